package director

import (
	"sync"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// maxPending is the number of applied operations above which they are
// folded into the engine's view at once rather than when it is next
// needed whole.
const maxPending = 4096

// view returns the engine's view of the kernel's table (nil before the
// first reconciliation), folding in the operations applied since it was
// last built. Copying a large table for every small change would cost
// more than the change: a quick plan works on the few services it
// changes and leaves the fold to the next full plan or snapshot.
func (e *Engine) view() *ipvs.Table {
	if len(e.pending) > 0 {
		e.table, e.pending = ipvs.ApplyOps(e.table, e.pending, nil), nil
	}
	return e.table
}

// setView records the result of a batch: ops were applied on top of cur
// and then curOps (e.pending or nil: only the engine holds it).
func (e *Engine) setView(cur *ipvs.Table, curOps, ops []ipvs.Op) {
	e.table, e.pending = cur, append(curOps, ops...)
	if len(e.pending) > maxPending {
		e.view()
	}
}

// published is what the engine shows readers: taken under the engine's
// lock after every change, read without it, so a scrape or a status
// request never waits behind a reconciliation.
type published struct {
	cfg     *Config
	in      *Inputs
	cnt     Counters
	names   map[ipvs.ServiceKey]string
	table   *ipvs.Table
	pending []ipvs.Op // applied after table; folded on first use

	once   sync.Once
	folded *ipvs.Table
}

// publish makes the current state visible to readers. The caller holds
// e.mu.
func (e *Engine) publish() {
	e.pub.Store(&published{
		cfg: e.cfg, in: e.in.Clone(), cnt: e.cnt, names: e.names,
		table: e.table, pending: e.pending[:len(e.pending):len(e.pending)],
	})
}

// Snapshot returns the IPVS table as of the last reconciliation, with the
// changes made since, and the names of the services lvs-node manages in
// it. Counters and rates are those of the last kernel read (the last
// resync or start); entries created since then have zero counters. The
// table must not be modified. It never waits for a reconciliation.
func (e *Engine) Snapshot() (*ipvs.Table, map[ipvs.ServiceKey]string) {
	p := e.pub.Load()
	p.once.Do(func() {
		p.folded = p.table
		if len(p.pending) > 0 {
			p.folded = ipvs.ApplyOps(p.table, p.pending, nil)
		}
	})
	return p.folded, p.names
}
