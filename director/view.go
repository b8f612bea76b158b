package director

import (
	"slices"
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
// and then curOps (e.pending or nil: only the engine holds it). ops is
// kept, not copied: a large batch is costly to copy.
func (e *Engine) setView(cur *ipvs.Table, curOps, ops []ipvs.Op) {
	if len(curOps) == 0 {
		e.table, e.pending = cur, ops[:len(ops):len(ops)]
	} else {
		e.table, e.pending = cur, append(curOps, ops...)
	}
	if len(e.pending) > maxPending {
		e.view()
	}
}

// setViewAfter records the result of p's batch, of which the kernel
// acknowledged acked. When p built the whole table from an empty one and
// the kernel took all of it, the kernel holds the desired table: the view
// is that table (its real-server lists shared, as views share them), with
// no need to replay a batch of one operation per object.
func (e *Engine) setViewAfter(p *planned, acked []ipvs.Op) {
	if !p.quick && len(p.cur.Services) == 0 && len(p.curOps) == 0 && len(acked) == len(p.ops) && builds(p.plan.Table, acked) {
		e.table, e.pending = &ipvs.Table{Services: slices.Clone(p.plan.Table.Services)}, nil
		return
	}
	e.setView(p.cur, p.curOps, acked)
}

// builds reports whether ops are exactly the additions of t's services and
// real servers, as Diff makes them from an empty table.
func builds(t *ipvs.Table, ops []ipvs.Op) bool {
	dests := 0
	for i := range t.Services {
		dests += len(t.Services[i].Dests)
	}
	if len(ops) != len(t.Services)+dests {
		return false
	}
	svcs := 0
	for i := range ops {
		switch ops[i].Kind {
		case ipvs.AddService:
			svcs++
		case ipvs.AddDest:
		default:
			return false
		}
	}
	return svcs == len(t.Services)
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
