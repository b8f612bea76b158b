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
	// table, with pending applied to it, is what the kernel holds as far
	// as the engine knows: the table last read from it with the
	// operations applied since (see view and applyOps). table is never
	// modified in place: Snapshot hands it out.
	table   *ipvs.Table
	pending []ipvs.Op
	// fresh is set while table can stand in for a kernel read: it was
	// read and every batch since succeeded. Reloads and Apply plan
	// against it; a resync always reads the kernel.
	fresh bool
	names map[ipvs.ServiceKey]string
	// last is the last reconciliation that fully succeeded; nil after any
	// failure. quickPlan starts from it.
	last *lastPlan
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
	return e.view(), e.names
}

// maxPending is the number of applied operations above which they are
// folded into the engine's view at once rather than when it is next
// needed whole.
const maxPending = 4096

// view returns the engine's view of the kernel's table (nil before the
// first reconciliation), folding in the operations applied since it was
// last built. Copying a large table for every small change would cost
// more than the change: a quick plan works on the few services it
// changes and leaves the fold to the next full plan or Snapshot.
func (e *Engine) view() *ipvs.Table {
	if len(e.pending) > 0 {
		e.table, e.pending = applyOps(e.table, e.pending), nil
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
	plan       *Plan
	ops        []ipvs.Op
	marks      map[string]uint32
	cur        *ipvs.Table
	curOps     []ipvs.Op // applied after cur: the view is both
	owned      Ownership
	nat4, nat6 bool
	belief     bool // cur is the engine's view, not a kernel read
	// quick: made by quickPlan, so the services, their names, marks and
	// VIPs are those of the last reconciliation. plan is that
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
	p := &planned{plan: plan, ops: Diff(plan.Table, cur, owned), marks: marks, cur: cur, owned: owned, belief: belief}
	p.nat4, p.nat6 = cfg.UsesNAT()
	return p, nil
}

// quickMax is the number of changed virtual services up to which
// quickPlan works service by service.
const quickMax = 32

// quickPlan plans cfg against the engine's view when it differs from the
// last reconciled configuration only inside a few virtual services, each
// keeping its name, service key, ports and VIP binding (what sets the
// service keys, names, firewall marks and bound VIPs): a weight, a real
// server, a scheduler or persistence change. It builds and compares
// those services only, so the cost does not grow with the table beyond
// one pass over the configuration. It returns nil when cfg needs the
// full computation.
func (e *Engine) quickPlan(cfg *Config) *planned {
	l := e.last
	old, now := l.cfg.VirtualServices, cfg.VirtualServices
	if len(old) != len(now) || cfg.Director.AutoFWMark != l.cfg.Director.AutoFWMark {
		return nil
	}
	changed, ok := changedServices(old, now)
	if !ok {
		return nil
	}
	p := &planned{plan: l.plan, marks: l.marks, cur: e.table, curOps: e.pending, nat4: l.nat4, nat6: l.nat6, belief: true, quick: true}
	if len(changed) == 0 {
		return p
	}
	sub := &Config{Director: cfg.Director, VirtualServices: make([]VirtualService, len(changed))}
	nat := false
	for j, i := range changed {
		sub.VirtualServices[j] = now[i]
		nat = nat || usesNAT(&old[i]) || usesNAT(&now[i])
	}
	if nat {
		p.nat4, p.nat6 = cfg.UsesNAT()
	}
	dp, err := Desired(sub, l.marks)
	if err != nil || len(dp.Table.Services) != len(changed) || len(l.plan.Table.Services) != len(now) {
		return nil
	}
	// The desired table has one entry per virtual service, in order.
	p.replace = make(map[int]ipvs.ServiceEntry, len(changed))
	keys := make([]ipvs.ServiceKey, len(changed))
	for j, i := range changed {
		s := dp.Table.Services[j]
		if normKey(s.ServiceKey) != normKey(l.plan.Table.Services[i].ServiceKey) {
			return nil
		}
		p.replace[i] = s
		keys[j] = normKey(s.ServiceKey)
	}
	wanted := func(k ipvs.ServiceKey) bool { return slices.Contains(keys, normKey(k)) }
	if len(keys) > 4 {
		set := make(map[ipvs.ServiceKey]bool, len(keys))
		for _, k := range keys {
			set[k] = true
		}
		wanted = func(k ipvs.ServiceKey) bool { return set[normKey(k)] }
	}
	// The changed services as the engine believes the kernel holds them
	// (one missing there is added back): as last read, with the
	// operations applied to them since.
	cur := &ipvs.Table{}
	for i := range e.table.Services {
		if wanted(e.table.Services[i].ServiceKey) {
			cur.Services = append(cur.Services, e.table.Services[i])
		}
	}
	var since []ipvs.Op
	for _, op := range e.pending {
		if wanted(op.Service.ServiceKey) {
			since = append(since, op)
		}
	}
	if len(since) > 0 {
		cur = applyOps(cur, since)
	}
	// No current service is outside the desired subset: nothing is
	// deleted, so ownership does not matter here.
	p.ops = Diff(dp.Table, cur, nil)
	return p
}

// changedServices returns the positions of the services of now that
// differ from old (of the same length), in order. ok is false when more
// than quickMax differ or one changes its identity (see
// sameServiceIdentity).
func changedServices(old, now []VirtualService) (changed []int, ok bool) {
	for i := range now {
		a, b := &old[i], &now[i]
		if sameVirtualService(a, b) {
			continue
		}
		if len(changed) == quickMax || !sameServiceIdentity(a, b) {
			return nil, false
		}
		changed = append(changed, i)
	}
	return changed, true
}

// usesNAT reports whether a real server of vs is forwarded by NAT.
func usesNAT(vs *VirtualService) bool {
	for i := range vs.RealServers {
		if vs.RealServers[i].forward == ipvs.Masq {
			return true
		}
	}
	return false
}

// sameServiceIdentity reports whether a and b have the same name and set
// the same service key, firewall-mark rule and VIP binding.
func sameServiceIdentity(a, b *VirtualService) bool {
	return a.Name == b.Name && a.VIP == b.VIP && a.Family == b.Family && a.Protocol == b.Protocol &&
		eqPtr(a.Port, b.Port) && (a.Ports == nil) == (b.Ports == nil) && slices.Equal(a.Ports, b.Ports) &&
		eqPtr(a.FWMark, b.FWMark) && a.BindVIP == b.BindVIP &&
		a.vip == b.vip && a.family == b.family && a.proto == b.proto && a.explicit == b.explicit
}

// sameVirtualService reports whether a and b are the same configuration.
// It compares every field the file sets (TestSameVirtualServiceFields
// keeps it complete).
func sameVirtualService(a, b *VirtualService) bool {
	if !sameServiceIdentity(a, b) || a.Scheduler != b.Scheduler || !slices.Equal(a.SchedulerFlags, b.SchedulerFlags) ||
		a.OnePacket != b.OnePacket || a.Forwarding != b.Forwarding || len(a.RealServers) != len(b.RealServers) ||
		a.flags != b.flags || a.timeout != b.timeout || a.netmask != b.netmask || a.forward != b.forward {
		return false
	}
	if (a.Persistence == nil) != (b.Persistence == nil) || a.Persistence != nil && *a.Persistence != *b.Persistence {
		return false
	}
	// Real servers are many: their address, forwarding and tunnel type
	// are compared as parsed, which is cheaper than as written and
	// equivalent for the kernel.
	for i := range a.RealServers {
		x, y := &a.RealServers[i], &b.RealServers[i]
		if x.addr != y.addr || x.forward != y.forward || x.tunType != y.tunType ||
			x.UpperThreshold != y.UpperThreshold || x.LowerThreshold != y.LowerThreshold || x.TunnelPort != y.TunnelPort ||
			!eqPtr(x.Weight, y.Weight) || !eqPtr(x.Port, y.Port) {
			return false
		}
	}
	return true
}

// eqPtr reports whether two optional values are both absent or equal.
func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
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
// small change costs a few operations and no table dump; a change inside
// a few virtual services (weights, real servers, scheduler, persistence)
// is planned for those services only. When the kernel
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
	last := e.last
	e.last = nil // set again once everything succeeded
	e.cfg = cfg
	e.nftable = cfg.Director.NFTable
	rec := e.rec
	// A quick plan keeps the services, marks and VIPs of the last
	// reconciliation: they are recorded and in place already.
	same := p.quick && last != nil

	// Record ownership of everything about to be created before creating
	// it, so that a crash half-way leaves nothing unowned.
	if !same {
		before := ownershipWith(p.owned, p.plan.Table)
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

	if err := e.setSysctls(cfg, p.nat4, p.nat6); err != nil {
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
			e.setView(p.cur, p.curOps, ops)
			return ops, fmt.Errorf("apply IPVS changes: %w", err)
		}
	}
	e.cnt.OpsApplied += uint64(len(p.ops))
	e.setView(p.cur, p.curOps, p.ops)
	e.fresh = true
	if !same && (len(p.plan.Marks) > 0 || len(rec.FWMarks) > 0) {
		if e.deps.Marker == nil {
			return p.ops, errors.New("ports: services need nftables, which is not available")
		}
		if err := e.deps.Marker.Set(p.plan.Marks); err != nil {
			return p.ops, fmt.Errorf("set firewall marks: %w", err)
		}
	}
	if !same || cfg.Director.VIPInterface != last.cfg.Director.VIPInterface {
		if err := e.bindVIPs(cfg, p.plan.VIPs, rec); err != nil {
			return p.ops, err
		}
	}

	// Everything applied: lvs-node now owns exactly the desired services.
	if !same {
		after := ownershipWith(nil, p.plan.Table)
		if !maps.Equal(after, rec.owned()) || !maps.Equal(rec.FWMarks, p.marks) {
			rec.Services = sortedKeys(after)
			rec.FWMarks = p.marks
			if err := rec.save(e.stateDir); err != nil {
				return p.ops, err
			}
		}
	}
	// The plan is the engine's own (never handed out): a quick one
	// updates it in place.
	for i, s := range p.replace {
		p.plan.Table.Services[i] = s
	}
	e.names = p.plan.Names
	e.last = &lastPlan{cfg: cfg, plan: p.plan, marks: p.marks, nat4: p.nat4, nat6: p.nat6}
	return p.ops, nil
}

// ownershipWith returns a copy of o with the services of t added.
func ownershipWith(o Ownership, t *ipvs.Table) Ownership {
	out := make(Ownership, max(len(o), len(t.Services)))
	maps.Copy(out, o)
	for i := range t.Services {
		out[normKey(t.Services[i].ServiceKey)] = true
	}
	return out
}

// setSysctls sets the sysctls cfg asks for; v4 and v6 tell whether it
// uses NAT (see Config.UsesNAT).
func (e *Engine) setSysctls(cfg *Config, v4, v6 bool) error {
	type kv struct{ k, v string }
	var want []kv
	s := cfg.Director.Sysctls
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
	e.fresh, e.last = false, nil
	if len(ops) > 0 {
		if err := e.deps.Kernel.Apply(ctx, ops); err != nil {
			e.table, e.pending = cur, nil
			return nil, fmt.Errorf("remove IPVS services: %w", err)
		}
	}
	e.table, e.pending, e.names = applyOps(cur, ops), nil, nil
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
