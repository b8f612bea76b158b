package director

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// SetHealth records health verdicts of real servers and applies what they
// change: only the destinations whose effective weight (or presence)
// changes are written, in one batch. A verdict that repeats the current
// state only updates its reason. Verdicts for real servers the
// configuration does not have are ignored.
func (e *Engine) SetHealth(ctx context.Context, changes map[ServerRef]Health) ([]ipvs.Op, error) {
	return e.setInputs(ctx, func(in *Inputs) []ServerRef {
		var refs []ServerRef
		for r, h := range changes {
			old, ok := in.Health[r]
			in.Health[r] = h
			if !ok || old.State != h.State {
				refs = append(refs, r)
			}
		}
		return refs
	})
}

// SetFeedback records what real servers' agents report (nil removes a
// real server's feedback: back to its configured weight) and applies the
// destinations whose effective weight changes.
func (e *Engine) SetFeedback(ctx context.Context, changes map[ServerRef]*Feedback) ([]ipvs.Op, error) {
	return e.setInputs(ctx, func(in *Inputs) []ServerRef {
		refs := make([]ServerRef, 0, len(changes))
		for r, f := range changes {
			if f == nil {
				delete(in.Feedback, r)
			} else {
				in.Feedback[r] = *f
			}
			refs = append(refs, r)
		}
		return refs
	})
}

// SetOverride drains a real server (drain true) or lifts the operator's
// drain, and applies it. The override is saved in the state directory
// before it is applied, so it survives a restart; an override of a real
// server the configuration does not have is refused.
func (e *Engine) SetOverride(ctx context.Context, r ServerRef, drain bool) ([]ipvs.Op, error) {
	e.mu.Lock()
	known := e.cfg != nil && e.hasServer(r)
	e.mu.Unlock()
	if !known {
		return nil, fmt.Errorf("no real server %s in the configuration in force", r)
	}
	var saveErr error
	ops, err := e.setInputs(ctx, func(in *Inputs) []ServerRef {
		if drain {
			in.Override[r] = Override{Drain: true, Since: time.Now().UTC()}
		} else {
			delete(in.Override, r)
		}
		saveErr = e.saveOverrides()
		return []ServerRef{r}
	})
	if saveErr != nil {
		return ops, fmt.Errorf("save the override: %w", saveErr)
	}
	return ops, err
}

// SetRole records the director's HA role. It changes no destination: the
// connection-sync daemon and route announcements follow it.
func (e *Engine) SetRole(r Role) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.publish()
	if e.in.Role != r {
		e.cnt.InputChanges++
	}
	e.in.Role = r
}

// setInputs changes the inputs with change, which returns the real
// servers whose inputs changed, and applies their services: the services
// alone when the engine's view is fresh, else a full reconciliation.
func (e *Engine) setInputs(ctx context.Context, change func(*Inputs) []ServerRef) ([]ipvs.Op, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.publish()
	if _, err := e.records(); err != nil {
		return nil, err
	}
	refs := change(e.in)
	if e.cfg == nil || len(refs) == 0 {
		return nil, nil // the first reconciliation applies them
	}
	var pos []int
	for _, r := range refs {
		if i, ok := e.byName[r.Service]; ok && !slices.Contains(pos, i) {
			pos = append(pos, i)
		}
	}
	if len(pos) == 0 {
		return nil, nil
	}
	e.cnt.InputChanges++
	if e.last != nil && e.fresh && e.last.cfg == e.cfg {
		slices.Sort(pos)
		if p := e.planServices(e.cfg, pos, false); p != nil {
			ops, err := e.commit(ctx, e.cfg, p)
			if err == nil || !staleView(err) {
				return ops, err
			}
		}
	}
	return e.apply(ctx, e.cfg, fromBelief)
}

// hasServer reports whether the configuration in force has r.
func (e *Engine) hasServer(r ServerRef) bool {
	i, ok := e.byName[r.Service]
	if !ok {
		return false
	}
	vs := &e.cfg.VirtualServices[i]
	for j := range vs.RealServers {
		if vs.ref(j) == r {
			return true
		}
	}
	return false
}

// saveOverrides writes the operator's overrides into the records.
func (e *Engine) saveOverrides() error {
	rec := e.rec
	rec.Overrides = rec.Overrides[:0]
	for _, r := range slices.SortedFunc(maps.Keys(e.in.Override), func(a, b ServerRef) int {
		if a.Service != b.Service {
			if a.Service < b.Service {
				return -1
			}
			return 1
		}
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	}) {
		rec.Overrides = append(rec.Overrides, overrideRecord{Server: r, Override: e.in.Override[r]})
	}
	return rec.save(e.stateDir)
}
