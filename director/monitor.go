package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/lvs-node/lvs-node/director/feedback"
	"github.com/lvs-node/lvs-node/healthz"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/promserve"
	"github.com/prometheus/client_golang/prometheus"
)

// MonitorOptions tune a Monitor.
type MonitorOptions struct {
	// Health are the health-check manager's options; Sink and Log are
	// the monitor's own.
	Health healthz.Options
	// Feedback are the load-feedback poller's options; Log is the
	// monitor's own.
	Feedback feedback.Options
}

// Monitor runs the health checks and polls the load agents that the
// configuration in force asks for, and hands what they find to the
// Engine as inputs: a health transition becomes SetHealth, a feedback
// change SetFeedback, each in one batch that writes only the
// destinations it changes. It never edits the configuration and never
// reads the file; the daemon tells it of every configuration it puts in
// force (Start, then Prepare, Commit or Revert around each reload).
//
// Health: each checked real server is one owner of a healthz check
// (identical checks of one target run once). The verdicts of the checks
// are kept in the state directory (director-health.json, written before
// they are applied), so that a restarted director restores them for the
// real servers already in the kernel (Seed) instead of taking every
// server out until it passes rise checks again. An agent that reports
// down, fail or stopped counts as a failed health check when its
// service says feedback.agent_health: true; a failed check always wins.
//
// Feedback: one poller polls the agents of every service with a feedback
// block (a real server in several services is polled once per port and
// token). A stale or unreachable agent means the configured weight,
// never 0.
//
// Transitions are logged once, by the health-check manager and the
// poller; the monitor logs the kernel changes they cause and each change
// of a service's quorum.
type Monitor struct {
	engine   *Engine
	log      *slog.Logger
	stateDir string
	mgr      *healthz.Manager
	poller   *feedback.Poller[ServerRef]
	fopts    feedback.Options
	wg       sync.WaitGroup

	apply sync.Mutex // serialises what the monitor hands the engine

	mu        sync.Mutex // guards what follows, briefly
	checks    map[ServerRef]checkState
	agentDown map[ServerRef]string
	fb        map[ServerRef]feedbackState
	targets   map[ServerRef]feedback.Target[ServerRef]
	quorum    map[string]serviceState
	owners    map[ServerRef]bool // the real servers checked
}

// checkState is the verdict of a real server's health check, as kept in
// the state directory.
type checkState struct {
	State  healthz.State `json:"state"`
	Reason string        `json:"reason,omitempty"` // "HTTP 503 after 3 checks"
	Since  time.Time     `json:"since"`
}

// feedbackState is the last feedback decision on a real server and when
// it came.
type feedbackState struct {
	feedback.Decision
	At time.Time
}

// NewMonitor returns a monitor feeding e, keeping its records in
// stateDir. It checks and polls nothing until Load and Run.
func NewMonitor(e *Engine, stateDir string, log *slog.Logger, opts MonitorOptions) (*Monitor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{engine: e, log: log, stateDir: stateDir,
		checks: map[ServerRef]checkState{}, agentDown: map[ServerRef]string{}, fb: map[ServerRef]feedbackState{},
		targets: map[ServerRef]feedback.Target[ServerRef]{}, quorum: map[string]serviceState{}}
	ho := opts.Health
	ho.Sink, ho.Log = m, log.With("input", "health")
	m.mgr = healthz.NewManager(ho)
	m.fopts = opts.Feedback
	m.fopts.Log = log.With("input", "feedback")
	p, err := feedback.NewPoller[ServerRef](nil, m, m.fopts)
	if err != nil {
		return nil, err
	}
	m.poller = p
	return m, nil
}

// Load sets up the checks and the agents of cfg, the configuration put in
// force at start, without running them: each check starts in the state
// Seed restored. An agent whose token file cannot be read is an error;
// the checks are set up all the same, and no agent is polled.
func (m *Monitor) Load(cfg *Config) error {
	m.mu.Lock()
	wants := healthWants(cfg, m.restoreLocked)
	m.mu.Unlock()
	var errs []error
	if err := m.update(wants); err != nil {
		errs = append(errs, fmt.Errorf("health checks: %w", err))
	}
	targets := feedbackTargets(cfg)
	p, err := feedback.NewPoller(targets, m, m.fopts)
	if err != nil {
		errs = append(errs, fmt.Errorf("load feedback: %w", err))
		targets = nil
	}
	m.mu.Lock()
	if p != nil {
		m.poller = p
	}
	for _, t := range targets {
		m.targets[t.Key] = t
	}
	m.mu.Unlock()
	return errors.Join(errs...)
}

// Run runs the checks and polls until ctx ends; Wait waits for them to
// stop. Run may be called once.
func (m *Monitor) Run(ctx context.Context) {
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		if err := m.mgr.Run(ctx); err != nil {
			m.log.Error("health checks stopped", "error", err)
		}
	}()
	go func() {
		defer m.wg.Done()
		_ = m.poller.Run(ctx)
	}()
	m.logQuorum()
}

// Wait waits for the checks and polls to end once the context given to
// Run is done.
func (m *Monitor) Wait() { m.wg.Wait() }

// Prepare readies the checks of cfg before the engine reloads it: new
// checks start, removed ones stop, unchanged ones keep their state. A
// real server that served without a check and gets one keeps serving
// until the check fails fall times (it is seeded up); a new real server
// is pending until it passes rise checks. When Prepare fails, nothing
// changed: the reload must be refused. After the engine's reload, call
// Commit, or Revert with the configuration in force when it failed.
func (m *Monitor) Prepare(ctx context.Context, cfg *Config) error {
	for i := range cfg.VirtualServices {
		if f := cfg.VirtualServices[i].Feedback; f != nil && f.TokenFile != "" {
			if _, err := feedback.ReadToken(f.TokenFile); err != nil {
				return fmt.Errorf("virtual service %s: feedback: %w", cfg.VirtualServices[i].Name, err)
			}
		}
	}
	seeds := m.newlyChecked(cfg)
	m.mu.Lock()
	for r, h := range seeds {
		m.checks[r] = checkState{State: healthz.StateUp, Reason: h.Reason, Since: h.Since}
	}
	wants := healthWants(cfg, m.restoreLocked)
	m.mu.Unlock()
	if err := m.update(wants); err != nil {
		m.mu.Lock()
		for r := range seeds {
			delete(m.checks, r)
		}
		m.mu.Unlock()
		return fmt.Errorf("health checks: %w", err)
	}
	if len(seeds) > 0 {
		m.apply.Lock()
		m.setHealth(ctx, seeds, "a check added to a serving real server")
		m.apply.Unlock()
	}
	return nil
}

// update hands wants to the health-check manager and, once it took
// them, records which real servers are checked.
func (m *Monitor) update(wants []healthz.Want) error {
	if err := m.mgr.Update(wants); err != nil {
		return err
	}
	owners := make(map[ServerRef]bool, len(wants))
	for _, w := range wants {
		owners[refOf(w.Owner)] = true
	}
	m.mu.Lock()
	m.owners = owners
	m.mu.Unlock()
	return nil
}

// Revert puts the checks of cfg (the configuration still in force after
// a refused reload) back, each with its last verdict.
func (m *Monitor) Revert(cfg *Config) {
	if cfg == nil {
		return
	}
	m.mu.Lock()
	wants := healthWants(cfg, m.restoreLocked)
	m.mu.Unlock()
	if err := m.update(wants); err != nil {
		m.log.Error("health checks of the previous configuration could not be restored", "error", err)
	}
}

// Commit follows a configuration the engine put in force: the load
// agents of cfg are polled from now on (an unchanged target keeps its
// state; a new or changed one starts at the configured weight), and what
// cfg no longer has is forgotten, in the state directory too.
func (m *Monitor) Commit(ctx context.Context, cfg *Config) {
	targets := feedbackTargets(cfg)
	m.apply.Lock()
	defer m.apply.Unlock()
	m.mu.Lock()
	want := map[ServerRef]feedback.Target[ServerRef]{}
	for _, t := range targets {
		want[t.Key] = t
	}
	fbReset := map[ServerRef]*Feedback{}
	healthFix := map[ServerRef]Health{}
	for r, old := range m.targets {
		if t, ok := want[r]; !ok || !sameTarget(old, t) {
			delete(m.fb, r)
			if _, ok := m.agentDown[r]; ok {
				delete(m.agentDown, r)
				healthFix[r] = Health{}
			}
			fbReset[r] = nil
		}
	}
	m.targets = want
	checked := checkedRefs(cfg)
	removed := false
	for r := range m.checks {
		if !checked[r] {
			delete(m.checks, r)
			healthFix[r], removed = Health{}, true
		}
	}
	for r := range healthFix {
		healthFix[r] = m.healthLocked(r, checked[r])
	}
	if removed {
		m.saveLocked()
	}
	m.mu.Unlock()
	if err := m.poller.SetTargets(ctx, targets); err != nil {
		m.log.Error("load feedback targets not updated", "error", err)
	}
	if len(fbReset) > 0 {
		m.setFeedback(ctx, fbReset)
	}
	if len(healthFix) > 0 {
		m.setHealth(ctx, healthFix, "checks changed by the reload")
	}
	m.logQuorum()
}

// HealthChanged receives the health-check manager's transitions: the
// verdicts are saved, then handed to the engine in one batch.
func (m *Monitor) HealthChanged(ctx context.Context, batch []healthz.Transition) {
	m.apply.Lock()
	defer m.apply.Unlock()
	m.mu.Lock()
	changes := make(map[ServerRef]Health, len(batch))
	for _, t := range batch {
		r := refOf(t.Owner)
		if !m.owners[r] {
			continue // a check a reload has just removed
		}
		if t.To == healthz.StateUnknown {
			delete(m.checks, r)
		} else {
			m.checks[r] = checkState{State: t.To, Reason: trimState(t.Reason, t.To), Since: t.At}
		}
		changes[r] = m.healthLocked(r, true)
	}
	if len(changes) == 0 {
		m.mu.Unlock()
		return
	}
	m.saveLocked()
	m.mu.Unlock()
	m.setHealth(ctx, changes, "health check")
	m.logQuorum()
}

// FeedbackChanged receives the poller's changes and hands them to the
// engine: the capacity and admin state as feedback, an agent that
// reports down (with agent_health) as health.
func (m *Monitor) FeedbackChanged(ctx context.Context, updates []feedback.Update[ServerRef]) {
	m.apply.Lock()
	defer m.apply.Unlock()
	m.mu.Lock()
	now := time.Now()
	fbc := make(map[ServerRef]*Feedback, len(updates))
	hc := map[ServerRef]Health{}
	for _, u := range updates {
		if _, ok := m.targets[u.Key]; !ok {
			continue // a target the last reload removed
		}
		m.fb[u.Key] = feedbackState{Decision: u.Decision, At: now}
		fbc[u.Key] = feedbackInput(u.Decision)
		_, was := m.agentDown[u.Key]
		if u.AgentDown != was {
			if u.AgentDown {
				m.agentDown[u.Key] = u.Reason
			} else {
				delete(m.agentDown, u.Key)
			}
			_, checked := m.checks[u.Key]
			hc[u.Key] = m.healthLocked(u.Key, checked || m.isChecked(u.Key))
		}
	}
	m.mu.Unlock()
	if len(hc) > 0 {
		m.setHealth(ctx, hc, "agent health")
	}
	if len(fbc) > 0 {
		m.setFeedback(ctx, fbc)
	}
	m.logQuorum()
}

// isChecked reports whether r has a health check in the configuration in
// force.
func (m *Monitor) isChecked(r ServerRef) bool {
	cfg := m.engine.Config()
	if cfg == nil {
		return false
	}
	return checkedRefs(cfg)[r]
}

// healthLocked combines the verdict of r's check and its agent's
// health: a failed check wins, then an agent that reports down, then the
// check's verdict (pending while it has none, when checked).
func (m *Monitor) healthLocked(r ServerRef, checked bool) Health {
	c, ok := m.checks[r]
	if ok && c.State == healthz.StateDown {
		return Health{State: Down, Reason: c.Reason, Since: c.Since}
	}
	if why, down := m.agentDown[r]; down {
		return Health{State: Down, Reason: "agent reports down (" + why + ")", Since: time.Now()}
	}
	switch {
	case ok && c.State == healthz.StateUp:
		return Health{State: Up, Reason: c.Reason, Since: c.Since}
	case checked:
		return Health{State: Pending, Reason: "not checked up yet", Since: time.Now()}
	}
	return Health{State: Up, Reason: "not checked", Since: time.Now()}
}

// restoreLocked is the state a check of r starts in.
func (m *Monitor) restoreLocked(r ServerRef) healthz.State { return m.checks[r].State }

// setHealth hands changes to the engine and logs the kernel changes.
func (m *Monitor) setHealth(ctx context.Context, changes map[ServerRef]Health, why string) {
	ctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
	defer cancel()
	ops, err := m.engine.SetHealth(ctx, changes)
	m.logOps(ops, err, why)
}

// setFeedback hands changes to the engine and logs the kernel changes.
func (m *Monitor) setFeedback(ctx context.Context, changes map[ServerRef]*Feedback) {
	ctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
	defer cancel()
	ops, err := m.engine.SetFeedback(ctx, changes)
	m.logOps(ops, err, "load feedback")
}

func (m *Monitor) logOps(ops []ipvs.Op, err error, why string) {
	for _, op := range ops {
		m.log.Info("change", "op", FormatOp(op), "why", why)
	}
	if err != nil {
		m.log.Error("input change not applied; the next resync retries", "why", why, "error", err)
	}
}

// logQuorum logs each service whose quorum state changed.
func (m *Monitor) logQuorum() {
	states := quorumStates(m.engine.Config(), m.engine.Inputs())
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, s := range states {
		old, ok := m.quorum[name]
		if ok && old.Met == s.Met && old.Sorry == s.Sorry && old.Kept == s.Kept || !ok && s.Met {
			continue
		}
		if s.Met {
			m.log.Info(s.describe(), "service", name)
		} else {
			m.log.Warn(s.describe(), "service", name)
		}
	}
	m.quorum = states
}

// MetricGroups returns the monitor's metrics for the daemon's registry:
// the health checks' (lvs_node_real_server_up, check durations,
// transitions) and load feedback's (capacity ratio, agent polls and
// errors).
func (m *Monitor) MetricGroups() map[string]promserve.Updater {
	return map[string]promserve.Updater{
		"health": promserve.Of(m.mgr),
		"feedback": promserve.UpdaterFunc(func(ch chan<- prometheus.Metric) error {
			m.mu.Lock()
			p := m.poller
			m.mu.Unlock()
			p.Collector().Collect(ch)
			return nil
		}),
	}
}

// healthWants lists the checks cfg asks for, each real server of a
// service an owner, starting from the state restore gives.
func healthWants(cfg *Config, restore func(ServerRef) healthz.State) []healthz.Want {
	var out []healthz.Want
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if !vs.checked {
			continue
		}
		for j := range vs.RealServers {
			spec, ok := vs.Check(j)
			if !ok {
				continue
			}
			o := ownerOf(vs, j)
			out = append(out, healthz.Want{Owner: o, Spec: spec, Restore: restore(refOf(o))})
		}
	}
	return out
}

// ownerOf is the check owner of the j-th real server of vs.
func ownerOf(vs *VirtualService, j int) healthz.Owner {
	rs := &vs.RealServers[j]
	return healthz.Owner{Service: vs.Name, VIP: vs.vip, Port: vs.servicePort(), Protocol: vs.proto.String(),
		FWMark: vs.explicit, Real: netip.AddrPortFrom(rs.addr, *rs.Port)}
}

func refOf(o healthz.Owner) ServerRef {
	return ServerRef{Service: o.Service, Addr: o.Real.Addr(), Port: o.Real.Port()}
}

// checkedRefs returns the real servers of cfg that have a health check.
func checkedRefs(cfg *Config) map[ServerRef]bool {
	out := map[ServerRef]bool{}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if !vs.checked {
			continue
		}
		for j := range vs.RealServers {
			if _, ok := vs.Check(j); ok {
				out[vs.ref(j)] = true
			}
		}
	}
	return out
}

// trimState drops the state a healthz reason starts with ("down: HTTP
// 503 after 3 checks"): the engine's Health has it apart.
func trimState(reason string, s healthz.State) string {
	r, _ := strings.CutPrefix(reason, s.String()+": ")
	return r
}

// snapshotChecks returns copies of the monitor's state for status.
func (m *Monitor) snapshot() (checks map[ServerRef]checkState, fb map[ServerRef]feedbackState, agentDown map[ServerRef]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.checks), maps.Clone(m.fb), maps.Clone(m.agentDown)
}
