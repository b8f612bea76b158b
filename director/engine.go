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

	mu    sync.Mutex
	cfg   *Config
	rec   *records
	cnt   Counters
	table *ipvs.Table // table read from the kernel by the last reconciliation
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

// Snapshot returns the last table read from the kernel and the names of
// the services lvs-node manages in it.
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
	plan  *Plan
	ops   []ipvs.Op
	marks map[string]uint32
	cur   *ipvs.Table
	owned Ownership
}

func (e *Engine) compute(ctx context.Context, cfg *Config) (*planned, error) {
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
	cur, err := e.deps.Kernel.Table(ctx)
	if err != nil {
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
	return &planned{plan: plan, ops: Diff(plan.Table, cur, owned), marks: marks, cur: cur, owned: owned}, nil
}

// Plan returns the operations Apply would make for cfg and the firewall
// mark rules it would set, changing nothing.
func (e *Engine) Plan(ctx context.Context, cfg *Config) ([]ipvs.Op, []MarkRule, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.compute(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return p.ops, p.plan.Marks, nil
}

// Apply makes the kernel match cfg and records what lvs-node owns. It
// returns the operations it applied (all of them on success).
func (e *Engine) Apply(ctx context.Context, cfg *Config) ([]ipvs.Op, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.apply(ctx, cfg)
}

func (e *Engine) apply(ctx context.Context, cfg *Config) (ops []ipvs.Op, err error) {
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
	p, err := e.compute(ctx, cfg)
	if err != nil {
		return nil, err
	}
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
			e.table = p.cur
			var oe *ipvs.OpError
			if errors.As(err, &oe) && oe.Index <= len(p.ops) {
				ops = p.ops[:oe.Index]
				e.cnt.OpsApplied += uint64(oe.Index)
			}
			return ops, fmt.Errorf("apply IPVS changes: %w", err)
		}
	}
	e.cnt.OpsApplied += uint64(len(p.ops))
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
	e.table = p.cur
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
func (e *Engine) Resync(ctx context.Context) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cfg == nil {
		return 0, errors.New("no configuration applied yet")
	}
	e.cnt.Resyncs++
	ops, err := e.apply(ctx, e.cfg)
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
func (e *Engine) Reload(ctx context.Context, cfg *Config) ([]ipvs.Op, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cnt.Reloads++
	ops, err := e.apply(ctx, cfg)
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
	if len(ops) > 0 {
		if err := e.deps.Kernel.Apply(ctx, ops); err != nil {
			return nil, fmt.Errorf("remove IPVS services: %w", err)
		}
	}
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
