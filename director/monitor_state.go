package director

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/lvs-node/lvs-node/healthz"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/state"
)

// healthFile holds the verdicts of the health checks in the state
// directory.
const healthFile = "director-health.json"

// healthRecords is the file's content.
type healthRecords struct {
	Servers []healthRecord `json:"servers"`
}

type healthRecord struct {
	Server ServerRef `json:"server"`
	checkState
}

func healthPath(stateDir string) string { return filepath.Join(stateDir, healthFile) }

// saveLocked writes the verdicts of the checks, atomically. A failure is
// logged: the verdict still applies, and the file is written again with
// the next one.
func (m *Monitor) saveLocked() {
	rec := healthRecords{Servers: make([]healthRecord, 0, len(m.checks))}
	for r, c := range m.checks {
		if c.State != healthz.StateUnknown {
			rec.Servers = append(rec.Servers, healthRecord{Server: r, checkState: c})
		}
	}
	slices.SortFunc(rec.Servers, func(a, b healthRecord) int { return compareRefs(a.Server, b.Server) })
	if err := state.Save(healthPath(m.stateDir), &rec); err != nil {
		m.log.Error("health verdicts not saved: a restart would check every real server anew", "error", err)
	}
}

// loadHealth reads the verdicts kept in stateDir.
func loadHealth(stateDir string) (map[ServerRef]checkState, error) {
	var rec healthRecords
	if _, err := state.Load(healthPath(stateDir), &rec); err != nil {
		return nil, err
	}
	out := make(map[ServerRef]checkState, len(rec.Servers))
	for _, s := range rec.Servers {
		out[s.Server] = s.checkState
	}
	return out, nil
}

// Seed gives the engine, before its first reconciliation, the health of
// the checked real servers of cfg, so that a restarted director does not
// take out servers that were serving:
//
//   - a verdict kept in the state directory is restored: down stays down
//     (until rise checks pass), up stays up (until fall checks fail) when
//     the real server is still in the kernel;
//   - a real server in the kernel with a weight above 0 and no kept
//     verdict (a check new in this configuration, a lost state
//     directory) was serving: it stays up until its check fails;
//   - any other real server is pending: no traffic before rise checks
//     pass. With assumeUp (lvs-node director --once, which runs no
//     checks), it gets its configured weight instead.
//
// Start then starts each check in the state seeded.
func (m *Monitor) Seed(ctx context.Context, cfg *Config, assumeUp bool) error {
	checked := checkedRefs(cfg)
	if len(checked) == 0 {
		return nil
	}
	kept, err := loadHealth(m.stateDir)
	if err != nil {
		m.log.Error("health verdicts of the last run cannot be read: real servers not serving now start pending", "error", err)
	}
	inKernel, err := m.engine.kernelWeights(ctx, cfg)
	if err != nil {
		m.log.Error("the kernel's table cannot be read to restore health verdicts", "error", err)
	}
	now := time.Now()
	seeds := map[ServerRef]Health{}
	m.mu.Lock()
	for r := range checked {
		k, ok := kept[r]
		w, present := inKernel[r]
		var c checkState
		switch {
		case ok && k.State == healthz.StateDown:
			c = checkState{State: healthz.StateDown, Reason: "restored: " + k.Reason, Since: k.Since}
		case ok && k.State == healthz.StateUp && present:
			c = checkState{State: healthz.StateUp, Reason: "restored: " + k.Reason, Since: k.Since}
		case !ok && present && w > 0:
			c = checkState{State: healthz.StateUp, Reason: "serving when the director started", Since: now}
		case assumeUp:
			seeds[r] = Health{State: Up, Reason: "not checked: --once runs no health checks", Since: now}
			continue
		default:
			continue
		}
		m.checks[r] = c
		seeds[r] = m.healthLocked(r, true)
	}
	m.mu.Unlock()
	if len(seeds) == 0 {
		return nil
	}
	_, err = m.engine.SetHealth(ctx, seeds)
	return err
}

// newlyChecked returns the real servers that cfg checks, the
// configuration in force does not, and that serve (a weight above 0 in
// the engine's view of the kernel): they start up.
func (m *Monitor) newlyChecked(cfg *Config) map[ServerRef]Health {
	old := m.engine.Config()
	if old == nil {
		return nil
	}
	var cand []ServerRef
	wasChecked := checkedRefs(old)
	m.mu.Lock()
	for r := range checkedRefs(cfg) {
		if _, ok := m.checks[r]; !ok && !wasChecked[r] {
			cand = append(cand, r)
		}
	}
	m.mu.Unlock()
	if len(cand) == 0 {
		return nil
	}
	weights := viewWeights(m.engine)
	out := map[ServerRef]Health{}
	now := time.Now()
	for _, r := range cand {
		if weights[r] > 0 {
			out[r] = Health{State: Up, Reason: "serving when its check was added", Since: now}
		}
	}
	return out
}

// viewWeights returns the weight of every real server of a managed
// service in the engine's view of the kernel.
func viewWeights(e *Engine) map[ServerRef]int32 {
	t, names := e.Snapshot()
	return destWeights(t, names)
}

func destWeights(t *ipvs.Table, names map[ipvs.ServiceKey]string) map[ServerRef]int32 {
	out := map[ServerRef]int32{}
	if t == nil {
		return out
	}
	for i := range t.Services {
		s := &t.Services[i]
		name, ok := names[ipvs.NormKey(s.ServiceKey)]
		if !ok {
			continue
		}
		for _, d := range s.Dests {
			out[ServerRef{Service: name, Addr: d.Addr, Port: d.Port}] = d.Weight
		}
	}
	return out
}

// kernelWeights reads the kernel's table and returns the weight of every
// real server of a service cfg names, by the name cfg gives it.
func (e *Engine) kernelWeights(ctx context.Context, cfg *Config) (map[ServerRef]int32, error) {
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
	marks, err := AllocateMarks(cfg, takenMarks(cur, rec.owned()))
	if err != nil {
		return nil, err
	}
	plan, err := Desired(cfg, marks, nil)
	if err != nil {
		return nil, err
	}
	return destWeights(cur, plan.Names), nil
}

// takenMarks returns the firewall marks of the services in cur that
// lvs-node does not own.
func takenMarks(cur *ipvs.Table, owned Ownership) map[uint32]bool {
	taken := map[uint32]bool{}
	for _, s := range cur.Services {
		if s.FWMark != 0 && !owned.Owns(s.ServiceKey) {
			taken[s.FWMark] = true
		}
	}
	return taken
}

// RestoreHealth gives e, before its first reconciliation of cfg, the
// health verdicts a director kept in the state directory, as a daemon's
// start does (see Monitor.Seed). lvs-node director --once, which runs no
// checks, passes assumeUp: real servers without a kept verdict get their
// configured weight; a dry run does not, and shows what a start would do.
func RestoreHealth(ctx context.Context, e *Engine, cfg *Config, assumeUp bool, log *slog.Logger) error {
	m, err := NewMonitor(e, cfg.Director.StateDir, log, MonitorOptions{})
	if err != nil {
		return err
	}
	return m.Seed(ctx, cfg, assumeUp)
}
