package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/state"
)

// Counters are the Engine's running totals.
type Counters struct {
	Applies      uint64 // reconciliations attempted
	ApplyErrors  uint64
	Resyncs      uint64
	Repairs      uint64 // operations a resync had to apply (drift)
	Reloads      uint64
	ReloadErrors uint64 // reloads refused (by validation or by the kernel)
	OpsApplied   uint64 // operations the kernel acknowledged
	InputChanges uint64 // health, feedback, override and role changes applied
	LastApply    time.Time
	LastDuration time.Duration
	LastOK       bool
}

// Engine reconciles the kernel with the desired table: a pure function of
// the configuration and the other inputs (see Inputs and Desired). Its
// methods are safe for concurrent use; changes are serialised, and
// readers (Snapshot, Counters, Config, Inputs) never wait for them.
type Engine struct {
	deps     Deps
	log      *slog.Logger
	stateDir string
	nftable  string

	mu sync.Mutex // serialises changes; guards everything below
	// cfg is the configuration in force: the last one applied without a
	// refusal (nil before). A reload the kernel refuses leaves it as it
	// was, so resyncs converge back to it.
	cfg *Config
	in  *Inputs
	rec *records
	cnt Counters
	// table, with pending applied to it, is what the kernel holds as far
	// as the engine knows: the table last read from it with the
	// operations applied since (see view). table is never modified in
	// place: snapshots share it.
	table   *ipvs.Table
	pending []ipvs.Op
	// fresh is set while table can stand in for a kernel read: it was
	// read and every batch since was acknowledged. Reloads, Apply and the
	// input setters plan against it; a resync always reads the kernel.
	fresh bool
	names map[ipvs.ServiceKey]string
	// last is the last reconciliation that fully succeeded; nil after any
	// failure. Quick plans start from it.
	last *lastPlan
	// byName gives the position of each virtual service of cfg.
	byName map[string]int
	vidx   viewIndex // services of table by key, for quick plans

	pub atomic.Pointer[published] // what readers see
}

// lastPlan is a reconciliation that fully succeeded: the configuration,
// what it asked of the kernel, the marks allocated and whether NAT was
// used (per family).
type lastPlan struct {
	cfg        *Config
	plan       *Plan
	marks      map[string]uint32
	nat4, nat6 bool
}

// NewEngine returns an Engine that keeps its records in stateDir.
func NewEngine(stateDir string, deps Deps) *Engine {
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{deps: deps, log: log, stateDir: stateDir, in: NewInputs()}
	e.publish()
	return e
}

// Config returns the configuration in force (nil before the first).
func (e *Engine) Config() *Config { return e.pub.Load().cfg }

// Counters returns a copy of the running totals.
func (e *Engine) Counters() Counters { return e.pub.Load().cnt }

// Inputs returns a copy of the inputs other than the configuration.
func (e *Engine) Inputs() *Inputs { return e.pub.Load().in }

// planned is one computed reconciliation.
type planned struct {
	plan       *Plan
	ops        []ipvs.Op
	marks      map[string]uint32
	cur        *ipvs.Table
	curOps     []ipvs.Op // applied after cur: the view is both
	owned      Ownership
	nat4, nat6 bool
	belief     bool // cur is the engine's view, not a kernel read
	// quick: made by planServices, so the services, their names, marks
	// and VIPs are those of the last reconciliation. plan is that
	// reconciliation's, to be updated with the entries of replace (by
	// position) once this one succeeds.
	quick   bool
	replace map[int]ipvs.ServiceEntry
}

// Where compute takes the current table from.
const (
	fromBelief = false // the engine's view when fresh, else the kernel
	fromKernel = true  // always the kernel
)

func (e *Engine) compute(ctx context.Context, cfg *Config, read bool) (*planned, error) {
	if cfg.Director.StateDir != e.stateDir {
		return nil, fmt.Errorf("director.state_dir changed from %s to %s: restart lvs-node to move it", e.stateDir, cfg.Director.StateDir)
	}
	if e.nftable != "" && cfg.Director.NFTable != e.nftable {
		return nil, fmt.Errorf("director.nftables_table changed from %s to %s: restart lvs-node to rename it", e.nftable, cfg.Director.NFTable)
	}
	rec, err := e.records()
	if err != nil {
		return nil, err
	}
	if !read && e.fresh && e.table != nil && e.last != nil {
		if p := e.quickPlan(cfg); p != nil {
			return p, nil
		}
	}
	var cur *ipvs.Table
	belief := !read && e.fresh && e.table != nil
	if belief {
		cur = e.view()
	} else if cur, err = e.deps.Kernel.Table(ctx); err != nil {
		return nil, fmt.Errorf("read IPVS table: %w", err)
	}
	owned := rec.owned()
	taken := takenMarks(cur, owned)
	marks, err := AllocateMarks(cfg, taken)
	if err != nil {
		return nil, err
	}
	if !read || !e.fresh {
		e.logMarkChanges(cfg, rec.FWMarks, marks, taken)
	}
	plan, err := Desired(cfg, marks, e.in)
	if err != nil {
		return nil, err
	}
	p := &planned{plan: plan, ops: Diff(plan.Table, cur, owned), marks: marks, cur: cur, owned: owned, belief: belief}
	p.nat4, p.nat6 = cfg.UsesNAT()
	return p, nil
}

// Plan returns the operations Apply would make for cfg and the firewall
// mark rules it would set, changing nothing. It always reads the kernel.
func (e *Engine) Plan(ctx context.Context, cfg *Config) ([]ipvs.Op, []MarkRule, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.compute(ctx, cfg, fromKernel)
	if err != nil {
		return nil, nil, err
	}
	return p.ops, p.plan.Marks, nil
}

// Apply makes the kernel match cfg and the current inputs, and records
// what lvs-node owns. It returns the operations the kernel acknowledged.
//
// The first Apply reads the kernel's table. Later ones plan against the
// engine's view of it (the last read with the changes made since), so a
// small change costs a few operations and no table dump; a change inside
// a few virtual services (weights, real servers, scheduler, persistence)
// is planned for those services only. When the kernel refuses an
// operation in a way that shows the view was out of date (an entry added
// or removed behind lvs-node's back: EEXIST, ENOENT, ESRCH), Apply reads
// the table, plans again and retries once. Resync is what finds drift
// that no change runs into.
//
// cfg comes into force when it is applied without error, or with only
// services the kernel cannot hold (a *PartialError).
func (e *Engine) Apply(ctx context.Context, cfg *Config) ([]ipvs.Op, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.publish()
	return e.apply(ctx, cfg, fromBelief)
}

func (e *Engine) apply(ctx context.Context, cfg *Config, read bool) (ops []ipvs.Op, err error) {
	start := time.Now()
	e.cnt.Applies++
	defer func() {
		e.cnt.LastApply = start
		e.cnt.LastDuration = time.Since(start)
		e.cnt.LastOK = err == nil
		if err != nil {
			e.cnt.ApplyErrors++
		}
	}()
	p, err := e.compute(ctx, cfg, read)
	if err != nil {
		return nil, err
	}
	ops, err = e.commit(ctx, cfg, p)
	if err == nil || !p.belief || !staleView(err) {
		return ops, err
	}
	e.log.Info("the kernel's IPVS table differed from the engine's view: reading it and planning again", "error", err)
	p, rerr := e.compute(ctx, cfg, fromKernel)
	if rerr != nil {
		return ops, fmt.Errorf("%w; then %w", err, rerr)
	}
	more, err := e.commit(ctx, cfg, p)
	return append(ops, more...), err
}

// staleView reports whether err is the kernel refusing an operation
// because of an entry the engine did not know of or believed present.
func staleView(err error) bool {
	var oe *ipvs.OpError
	if !errors.As(err, &oe) {
		return false
	}
	return errors.Is(oe, syscall.EEXIST) || errors.Is(oe, syscall.ENOENT) || errors.Is(oe, syscall.ESRCH)
}

// commit carries out one planned reconciliation. cfg comes into force
// only once the kernel has acknowledged everything (or everything but
// services it cannot hold: a *PartialError).
func (e *Engine) commit(ctx context.Context, cfg *Config, p *planned) (ops []ipvs.Op, err error) {
	last := e.last
	e.last = nil // set again once everything succeeded
	e.nftable = cfg.Director.NFTable
	rec := e.rec
	// A quick plan keeps the services, marks and VIPs of the last
	// reconciliation: they are recorded and in place already.
	same := p.quick && last != nil

	// Record ownership of every service about to be created (and the
	// marks) before creating it, so that a crash half-way leaves nothing
	// unowned. Services that exist already are taken over only once
	// everything succeeded: a refused change must not make lvs-node the
	// owner of a service it did not create.
	oldMarks := maps.Clone(rec.FWMarks)
	if !same {
		before := ownershipWith(p.owned, p.plan.Table, p.cur)
		if len(before) != len(p.owned) || !marksCovered(rec.FWMarks, p.marks) {
			rec.Services = sortedKeys(before)
			if rec.FWMarks == nil {
				rec.FWMarks = map[string]uint32{}
			}
			maps.Copy(rec.FWMarks, p.marks)
			if err := rec.save(e.stateDir); err != nil {
				return nil, err
			}
		}
	}

	// Sysctls and full-NAT depend on the configuration alone: an input
	// change planned against the view of the configuration in force
	// leaves them as the last reconciliation made them (a resync, which
	// reads the kernel, checks them again).
	inputsOnly := same && last.cfg == cfg && p.belief
	if !inputsOnly {
		if err := e.setSysctls(cfg, p.nat4, p.nat6); err != nil {
			return nil, err
		}
		if err := e.setFullNAT(cfg, true, !p.belief); err != nil {
			return nil, err
		}
	}
	if !same || !sameTimeouts(cfg.Director.Timeouts, last.cfg.Director.Timeouts) {
		if err := e.setTimeouts(ctx, cfg); err != nil {
			return nil, fmt.Errorf("set IPVS timeouts: %w", err)
		}
	}
	// A service whose mark changes is deleted only once the rules set
	// the new mark: its new service exists first.
	ops, later := p.ops, []ipvs.Op(nil)
	if !same {
		ops, later = markChanges(p.ops, oldMarks, p.marks)
	}
	acked, skipped, err := e.send(ctx, ops)
	e.cnt.OpsApplied += uint64(len(acked))
	if err != nil {
		// What the kernel holds is uncertain now: the next
		// reconciliation reads it.
		e.fresh = false
		e.setView(p.cur, p.curOps, acked)
		return acked, fmt.Errorf("apply IPVS changes: %w", err)
	}
	e.setViewAfter(p, acked)
	e.fresh = true
	if !same && (len(p.plan.Marks) > 0 || len(rec.FWMarks) > 0) {
		if e.deps.Marker == nil {
			return acked, errors.New("ports: services need nftables, which is not available")
		}
		if err := e.deps.Marker.Set(p.plan.Marks); err != nil {
			return acked, fmt.Errorf("set firewall marks: %w", err)
		}
	}
	if len(later) > 0 {
		more, _, err := e.send(ctx, later)
		e.cnt.OpsApplied += uint64(len(more))
		e.setView(p.cur, p.curOps, append(acked, more...))
		acked = append(acked, more...)
		if err != nil {
			e.fresh = false
			return acked, fmt.Errorf("remove services of former firewall marks: %w", err)
		}
	}
	if !same || cfg.Director.VIPInterface != last.cfg.Director.VIPInterface {
		if err := e.bindVIPs(cfg, p.plan.VIPs, rec); err != nil {
			return acked, err
		}
	}
	if !inputsOnly {
		if err := e.setFullNAT(cfg, false, false); err != nil {
			return acked, err
		}
	}

	// Everything applied: lvs-node now owns exactly the desired services
	// the kernel holds.
	if !same {
		after := ownershipWith(nil, p.plan.Table, nil)
		for _, s := range skipped {
			if !p.owned[s.Key] {
				delete(after, s.Key)
			}
		}
		if !maps.Equal(after, rec.owned()) || !maps.Equal(rec.FWMarks, p.marks) {
			rec.Services = sortedKeys(after)
			rec.FWMarks = p.marks
			if err := rec.save(e.stateDir); err != nil {
				return acked, err
			}
		}
	}
	e.setConfig(cfg)
	if len(skipped) > 0 {
		// The kernel does not hold what the plan says: no quick plan
		// may start from it.
		return acked, &PartialError{Skipped: skipped}
	}
	// The plan is the engine's own (never handed out): a quick one
	// updates it in place.
	for i, s := range p.replace {
		p.plan.Table.Services[i] = s
	}
	e.names = p.plan.Names
	e.last = &lastPlan{cfg: cfg, plan: p.plan, marks: p.marks, nat4: p.nat4, nat6: p.nat6}
	return acked, nil
}

// setConfig puts cfg in force.
func (e *Engine) setConfig(cfg *Config) {
	if e.cfg == cfg || e.followConfig(cfg) {
		return
	}
	e.cfg = cfg
	e.byName = make(map[string]int, len(cfg.VirtualServices))
	for i := range cfg.VirtualServices {
		e.byName[cfg.VirtualServices[i].Name] = i
	}
	e.in.prune(cfg)
}

// Resync re-applies the configuration in force and every input, repairing
// drift, and returns the number of operations it needed (0 when nothing
// drifted). It always reads the kernel's table, which also refreshes the
// counters Snapshot reports. Services the kernel cannot hold (a missing
// scheduler module) do not keep the others from being repaired: they are
// reported in a *PartialError.
func (e *Engine) Resync(ctx context.Context) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.publish()
	if e.cfg == nil {
		return 0, errors.New("no configuration applied yet")
	}
	e.cnt.Resyncs++
	ops, err := e.apply(ctx, e.cfg, fromKernel)
	e.cnt.Repairs += uint64(len(ops))
	if len(ops) > 0 {
		e.log.Warn("resync repaired drift", "operations", len(ops))
		logOps(e.log, slog.LevelWarn, "repair", ops, 20)
	}
	return len(ops), err
}

// Reload puts cfg in force in place of the current configuration, keeping
// the other inputs. Like Apply, it plans against the engine's view of the
// kernel. When the kernel refuses any of it, the previous configuration
// stays in force and is applied again at once, so the kernel goes back to
// it; the error says what was refused and what was rolled back.
func (e *Engine) Reload(ctx context.Context, cfg *Config) ([]ipvs.Op, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.publish()
	e.cnt.Reloads++
	old := e.cfg
	ops, err := e.apply(ctx, cfg, fromBelief)
	if err == nil {
		return ops, nil
	}
	e.cnt.ReloadErrors++
	if old == nil || old == e.cfg && len(ops) == 0 {
		return ops, err
	}
	// The reload went part of the way (or, refused in part, came into
	// force): put the previous configuration back.
	e.setConfig(old)
	back, rerr := e.apply(ctx, old, fromKernel)
	if rerr != nil {
		return ops, fmt.Errorf("%w; rolling back to the previous configuration failed too (%d changes made): %w", err, len(back), rerr)
	}
	return ops, fmt.Errorf("%w; the previous configuration was restored (%d changes undone)", err, len(back))
}

// CountReloadError counts a reload refused before reaching the kernel (a
// configuration that does not validate).
func (e *Engine) CountReloadError() {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.publish()
	e.cnt.Reloads++
	e.cnt.ReloadErrors++
}

// Down removes every service lvs-node owns, its firewall marks and the
// VIPs it added, and restores the sysctls it changed. Services it does not
// own, and addresses it did not add, are left alone.
func (e *Engine) Down(ctx context.Context) ([]ipvs.Op, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.publish()
	rec, err := e.records()
	if err != nil {
		return nil, err
	}
	cur, err := e.deps.Kernel.Table(ctx)
	if err != nil {
		return nil, fmt.Errorf("read IPVS table: %w", err)
	}
	ops := Diff(&ipvs.Table{}, cur, rec.owned())
	e.fresh, e.last = false, nil
	acked, _, err := e.send(ctx, ops)
	e.table, e.pending, e.names = ipvs.ApplyOps(cur, acked, nil), nil, nil
	if err != nil {
		return acked, fmt.Errorf("remove IPVS services: %w", err)
	}
	var errs []error
	if e.deps.Marker != nil { // our own table; deleting a missing one is harmless
		if err := e.deps.Marker.Delete(); err != nil {
			errs = append(errs, fmt.Errorf("remove firewall marks: %w", err))
		}
	}
	if err := e.downFullNAT(rec); err != nil {
		errs = append(errs, err)
	}
	if err := e.unbindVIPs(rec); err != nil {
		errs = append(errs, err)
	}
	if err := e.restoreTimeouts(ctx); err != nil {
		errs = append(errs, err)
	}
	if e.deps.Sysctls != nil {
		if err := e.deps.Sysctls.Restore(); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctls: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return acked, err
	}
	e.rec = &records{}
	e.cfg = nil
	return acked, state.Remove(recordsPath(e.stateDir))
}

// logOps logs up to limit operations, one line each.
func logOps(log *slog.Logger, level slog.Level, msg string, ops []ipvs.Op, limit int) {
	for i, op := range ops {
		if i == limit {
			log.Log(context.Background(), level, "more changes not shown", "count", len(ops)-i)
			return
		}
		log.Log(context.Background(), level, msg, "op", FormatOp(op))
	}
}

// marksCovered reports whether have records every allocation of want.
func marksCovered(have, want map[string]uint32) bool {
	for k, v := range want {
		if m, ok := have[k]; !ok || m != v {
			return false
		}
	}
	return true
}

// Ready reports whether a configuration is in force and the last
// reconciliation succeeded: the kernel is in sync with it.
func (e *Engine) Ready() error {
	p := e.pub.Load()
	switch {
	case p.cfg == nil:
		return errors.New("no configuration applied yet")
	case !p.cnt.LastOK:
		return errors.New("the last reconciliation failed")
	}
	return nil
}
