package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/state"
)

// Kernel reads and writes the IPVS table.
type Kernel interface {
	Table(ctx context.Context) (*ipvs.Table, error)
	Apply(ctx context.Context, ops []ipvs.Op) error
}

// Marker replaces the firewall-mark rules of the nftables table lvs-node
// owns.
type Marker interface {
	Set(rules []MarkRule) error // atomic replace; an empty list keeps an empty table
	Delete() error              // remove the table
}

// SysctlStore changes sysctls and remembers their original values.
type SysctlStore interface {
	Set(key, value string) error // key relative to /proc/sys, slash form
	Restore() error
}

// Addresser adds and removes VIPs on an interface of the director.
type Addresser interface {
	AddAddr(ifname string, a netip.Addr) error // idempotent
	DelAddr(ifname string, a netip.Addr) error // a missing address is not an error
}

// Deps are the kernel seams an Engine works through. Marker, Sysctls and
// Addrs may be nil when the configuration never needs them.
type Deps struct {
	Kernel  Kernel
	Marker  Marker
	Sysctls SysctlStore
	Addrs   Addresser
	Log     *slog.Logger
}

// Counters are the Engine's running totals.
type Counters struct {
	Applies      uint64 // reconciliations attempted
	ApplyErrors  uint64
	Resyncs      uint64
	Repairs      uint64 // operations a resync had to apply (drift)
	Reloads      uint64
	ReloadErrors uint64
	OpsApplied   uint64
	LastApply    time.Time
	LastDuration time.Duration
	LastOK       bool
}

// Engine reconciles the kernel with a Config. Its methods are safe for
// concurrent use; kernel calls are serialised.
type Engine struct {
	deps     Deps
	log      *slog.Logger
	stateDir string
	nftable  string

	mu  sync.Mutex
	cfg *Config
	rec *records
	cnt Counters
	// table is what the kernel holds as far as the engine knows: the table
	// last read from it with the operations applied since (see applyOps).
	// It is never modified in place: Snapshot hands it out.
	table *ipvs.Table
	// fresh is set while table can stand in for a kernel read: it was
	// read and every batch since succeeded. Reloads and Apply plan
	// against it; a resync always reads the kernel.
	fresh bool
	names map[ipvs.ServiceKey]string
}

// NewEngine returns an Engine that keeps its records in stateDir.
func NewEngine(stateDir string, deps Deps) *Engine {
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{deps: deps, log: log, stateDir: stateDir}
}

// Config returns the configuration last applied (nil before the first).
func (e *Engine) Config() *Config {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg
}

// Counters returns a copy of the running totals.
func (e *Engine) Counters() Counters {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cnt
}

// Snapshot returns the IPVS table as of the last reconciliation, with the
// changes it made, and the names of the services lvs-node manages in it.
// Counters and rates are those of the last kernel read (the last resync
// or start); entries created since then have zero counters. The table
// must not be modified.
func (e *Engine) Snapshot() (*ipvs.Table, map[ipvs.ServiceKey]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.table, e.names
}

func (e *Engine) records() (*records, error) {
	if e.rec != nil {
		return e.rec, nil
	}
	r, err := loadRecords(e.stateDir)
	if err != nil {
		return nil, err
	}
	e.rec = r
	return r, nil
}

// planned is one computed reconciliation.
type planned struct {
	plan   *Plan
	ops    []ipvs.Op
	marks  map[string]uint32
	cur    *ipvs.Table
	owned  Ownership
	belief bool // cur is the engine's view, not a kernel read
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
	cur, belief := e.table, true
	if read || !e.fresh || cur == nil {
		if cur, err = e.deps.Kernel.Table(ctx); err != nil {
			return nil, fmt.Errorf("read IPVS table: %w", err)
		}
		belief = false
	}
	owned := rec.owned()
	taken := map[uint32]bool{}
	for _, s := range cur.Services {
		if s.FWMark != 0 && !owned.Owns(s.ServiceKey) {
			taken[s.FWMark] = true
		}
	}
	marks, err := AllocateMarks(cfg, rec.FWMarks, taken)
	if err != nil {
		return nil, err
	}
	plan, err := Desired(cfg, marks)
	if err != nil {
		return nil, err
	}
	return &planned{plan: plan, ops: Diff(plan.Table, cur, owned), marks: marks, cur: cur, owned: owned, belief: belief}, nil
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

// Apply makes the kernel match cfg and records what lvs-node owns. It
// returns the operations it applied (all of them on success).
//
// The first Apply reads the kernel's table. Later ones plan against the
// engine's view of it (the last read with the changes made since), so a
// small change costs a few operations and no table dump. When the kernel
// refuses an operation in a way that shows the view was out of date (an
// entry added or removed behind lvs-node's back: EEXIST, ENOENT, ESRCH),
// Apply reads the table, plans again and retries once. Resync is what
// finds drift that no change runs into.
func (e *Engine) Apply(ctx context.Context, cfg *Config) ([]ipvs.Op, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
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

// commit carries out one planned reconciliation.
func (e *Engine) commit(ctx context.Context, cfg *Config, p *planned) (ops []ipvs.Op, err error) {
	e.cfg = cfg
	e.nftable = cfg.Director.NFTable
	rec := e.rec

	// Record ownership of everything about to be created before creating
	// it, so that a crash half-way leaves nothing unowned.
	before := maps.Clone(p.owned)
	for _, s := range p.plan.Table.Services {
		before[normKey(s.ServiceKey)] = true
	}
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

	if err := e.setSysctls(cfg); err != nil {
		return nil, err
	}
	if len(p.ops) > 0 {
		if err := e.deps.Kernel.Apply(ctx, p.ops); err != nil {
			// What the kernel holds is uncertain now: the next
			// reconciliation reads it.
			e.fresh = false
			var oe *ipvs.OpError
			if errors.As(err, &oe) && oe.Index <= len(p.ops) {
				ops = p.ops[:oe.Index]
				e.cnt.OpsApplied += uint64(oe.Index)
			}
			e.table = applyOps(p.cur, ops)
			return ops, fmt.Errorf("apply IPVS changes: %w", err)
		}
	}
	e.cnt.OpsApplied += uint64(len(p.ops))
	e.table, e.fresh = applyOps(p.cur, p.ops), true
	if len(p.plan.Marks) > 0 || len(rec.FWMarks) > 0 {
		if e.deps.Marker == nil {
			return p.ops, errors.New("ports: services need nftables, which is not available")
		}
		if err := e.deps.Marker.Set(p.plan.Marks); err != nil {
			return p.ops, fmt.Errorf("set firewall marks: %w", err)
		}
	}
	if err := e.bindVIPs(cfg, p.plan.VIPs, rec); err != nil {
		return p.ops, err
	}

	// Everything applied: lvs-node now owns exactly the desired services.
	after := make(Ownership, len(p.plan.Table.Services))
	for _, s := range p.plan.Table.Services {
		after[normKey(s.ServiceKey)] = true
	}
	if !maps.Equal(after, rec.owned()) || !maps.Equal(rec.FWMarks, p.marks) {
		rec.Services = sortedKeys(after)
		rec.FWMarks = p.marks
		if err := rec.save(e.stateDir); err != nil {
			return p.ops, err
		}
	}
	e.names = p.plan.Names
	return p.ops, nil
}

func (e *Engine) setSysctls(cfg *Config) error {
	type kv struct{ k, v string }
	var want []kv
	s := cfg.Director.Sysctls
	v4, v6 := cfg.UsesNAT()
	switch {
	case s.IPForward == nil:
		if v4 {
			want = append(want, kv{"net/ipv4/ip_forward", "1"})
		}
		if v6 {
			want = append(want, kv{"net/ipv6/conf/all/forwarding", "1"})
		}
	case *s.IPForward:
		want = append(want, kv{"net/ipv4/ip_forward", "1"}, kv{"net/ipv6/conf/all/forwarding", "1"})
	}
	b := func(x bool) string {
		if x {
			return "1"
		}
		return "0"
	}
	if s.ExpireNodestConn != nil {
		want = append(want, kv{"net/ipv4/vs/expire_nodest_conn", b(*s.ExpireNodestConn)})
	}
	if s.ExpireQuiescentTemplate != nil {
		want = append(want, kv{"net/ipv4/vs/expire_quiescent_template", b(*s.ExpireQuiescentTemplate)})
	}
	if s.ConnReuseMode != nil {
		want = append(want, kv{"net/ipv4/vs/conn_reuse_mode", strconv.FormatInt(*s.ConnReuseMode, 10)})
	}
	if len(want) == 0 {
		return nil
	}
	if e.deps.Sysctls == nil {
		return errors.New("sysctls are configured but no sysctl store is available")
	}
	for _, x := range want {
		if err := e.deps.Sysctls.Set(x.k, x.v); err != nil {
			return fmt.Errorf("set sysctl %s: %w", x.k, err)
		}
	}
	return nil
}

func (e *Engine) bindVIPs(cfg *Config, vips []netip.Addr, rec *records) error {
	if len(vips) == 0 && len(rec.VIPs) == 0 {
		return nil
	}
	if e.deps.Addrs == nil {
		return errors.New("bind_vip is set but no address manager is available")
	}
	ifname := cfg.Director.VIPInterface
	for _, a := range rec.VIPs {
		if rec.VIPInterface != ifname || !slices.Contains(vips, a) {
			if err := e.deps.Addrs.DelAddr(rec.VIPInterface, a); err != nil {
				return fmt.Errorf("remove VIP %s from %s: %w", a, rec.VIPInterface, err)
			}
		}
	}
	// Record before adding so that a crash leaves nothing unrecorded.
	rec.VIPInterface, rec.VIPs = ifname, slices.Clone(vips)
	if err := rec.save(e.stateDir); err != nil {
		return err
	}
	for _, a := range vips {
		if err := e.deps.Addrs.AddAddr(ifname, a); err != nil {
			return fmt.Errorf("add VIP %s to %s: %w", a, ifname, err)
		}
	}
	return nil
}

// Resync re-applies the current configuration, repairing drift, and
// returns the number of operations it needed (0 when nothing drifted).
// It always reads the kernel's table, which also refreshes the counters
// Snapshot reports.
func (e *Engine) Resync(ctx context.Context) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cfg == nil {
		return 0, errors.New("no configuration applied yet")
	}
	e.cnt.Resyncs++
	ops, err := e.apply(ctx, e.cfg, fromKernel)
	e.cnt.Repairs += uint64(len(ops))
	if len(ops) > 0 {
		e.log.Warn("resync repaired drift", "operations", len(ops))
		for i, op := range ops {
			if i == 20 {
				e.log.Warn("more repairs not shown", "count", len(ops)-i)
				break
			}
			e.log.Warn("repair", "op", FormatOp(op))
		}
	}
	return len(ops), err
}

// Reload applies cfg in place of the current configuration and counts it.
// Like Apply, it plans against the engine's view of the kernel.
func (e *Engine) Reload(ctx context.Context, cfg *Config) ([]ipvs.Op, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cnt.Reloads++
	ops, err := e.apply(ctx, cfg, fromBelief)
	if err != nil {
		e.cnt.ReloadErrors++
	}
	return ops, err
}

// CountReloadError counts a reload refused before reaching the kernel (a
// configuration that does not validate).
func (e *Engine) CountReloadError() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cnt.Reloads++
	e.cnt.ReloadErrors++
}

// Down removes every service lvs-node owns, its firewall marks and bound
// VIPs, and restores the sysctls it changed. Services it does not own are
// left alone.
func (e *Engine) Down(ctx context.Context) ([]ipvs.Op, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, err := e.records()
	if err != nil {
		return nil, err
	}
	cur, err := e.deps.Kernel.Table(ctx)
	if err != nil {
		return nil, fmt.Errorf("read IPVS table: %w", err)
	}
	ops := Diff(&ipvs.Table{}, cur, rec.owned())
	e.fresh = false
	if len(ops) > 0 {
		if err := e.deps.Kernel.Apply(ctx, ops); err != nil {
			e.table = cur
			return nil, fmt.Errorf("remove IPVS services: %w", err)
		}
	}
	e.table, e.names = applyOps(cur, ops), nil
	var errs []error
	if e.deps.Marker != nil { // our own table; deleting a missing one is harmless
		if err := e.deps.Marker.Delete(); err != nil {
			errs = append(errs, fmt.Errorf("remove firewall marks: %w", err))
		}
	}
	if len(rec.VIPs) > 0 && e.deps.Addrs != nil {
		for _, a := range rec.VIPs {
			if err := e.deps.Addrs.DelAddr(rec.VIPInterface, a); err != nil {
				errs = append(errs, fmt.Errorf("remove VIP %s: %w", a, err))
			}
		}
	}
	if e.deps.Sysctls != nil {
		if err := e.deps.Sysctls.Restore(); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctls: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return ops, err
	}
	e.rec = &records{}
	e.cfg = nil
	return ops, state.Remove(recordsPath(e.stateDir))
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

// applyOps returns t with ops applied the way the kernel applies them,
// leaving t untouched (the result shares the real-server lists of the
// services ops do not change). Settings come from the operations;
// counters and connection numbers of existing entries are kept and new
// entries start at zero. An operation the kernel would refuse (adding
// what exists, changing or deleting what does not) changes nothing.
// The services keep their order; new ones come last.
func applyOps(t *ipvs.Table, ops []ipvs.Op) *ipvs.Table {
	out := &ipvs.Table{}
	if t != nil {
		out.Services = slices.Clone(t.Services)
	}
	if len(ops) == 0 {
		return out
	}
	// own[i]: out.Services[i].Dests may be changed in place (a copy made
	// here); dead[i]: the service was deleted.
	own := make([]bool, len(out.Services), len(out.Services)+1)
	dead := make([]bool, len(out.Services), len(out.Services)+1)
	ndead := 0
	// A few operations search linearly; many use an index.
	var idx map[ipvs.ServiceKey]int
	if len(ops) > 8 {
		idx = make(map[ipvs.ServiceKey]int, len(out.Services))
		for i := range out.Services {
			idx[normKey(out.Services[i].ServiceKey)] = i
		}
	}
	find := func(k ipvs.ServiceKey) int {
		k = normKey(k)
		if idx != nil {
			if i, ok := idx[k]; ok {
				return i
			}
			return -1
		}
		for i := range out.Services {
			if !dead[i] && normKey(out.Services[i].ServiceKey) == k {
				return i
			}
		}
		return -1
	}
	for _, op := range ops {
		i := find(op.Service.ServiceKey)
		if op.Kind == ipvs.AddService {
			if i >= 0 {
				continue
			}
			s := op.Service
			s.Flags |= ipvs.FlagHashed
			out.Services = append(out.Services, ipvs.ServiceEntry{Service: s})
			own, dead = append(own, true), append(dead, false)
			if idx != nil {
				idx[normKey(s.ServiceKey)] = len(out.Services) - 1
			}
			continue
		}
		if i < 0 {
			continue
		}
		e := &out.Services[i]
		switch op.Kind {
		case ipvs.EditService:
			s := op.Service
			s.ServiceKey = e.ServiceKey
			s.Flags |= ipvs.FlagHashed
			e.Service = s
			continue
		case ipvs.DelService:
			dead[i] = true
			ndead++
			if idx != nil {
				delete(idx, normKey(e.ServiceKey))
			}
			continue
		}
		j := slices.IndexFunc(e.Dests, func(d ipvs.DestEntry) bool { return d.DestKey == op.Dest.DestKey })
		if (op.Kind == ipvs.AddDest) != (j < 0) {
			continue // a duplicate add, or a change to a missing server
		}
		if !own[i] {
			e.Dests = slices.Clip(slices.Clone(e.Dests))
			own[i] = true
		}
		switch op.Kind {
		case ipvs.AddDest:
			e.Dests = append(e.Dests, ipvs.DestEntry{Destination: op.Dest})
		case ipvs.EditDest:
			e.Dests[j].Destination = op.Dest
		case ipvs.DelDest:
			e.Dests = slices.Delete(e.Dests, j, j+1)
		}
	}
	if ndead > 0 {
		kept := out.Services[:0]
		for i := range out.Services {
			if !dead[i] {
				kept = append(kept, out.Services[i])
			}
		}
		clear(out.Services[len(kept):])
		out.Services = kept
	}
	return out
}
