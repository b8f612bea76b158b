package healthz

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Options.
const (
	DefaultMaxConcurrent = 1024
	DefaultBatchWindow   = 100 * time.Millisecond
	DefaultBatchMax      = 100
	DefaultHistory       = 5
	// minTick is the shortest sleep of the scheduler: checks due within
	// it run together, so that thousands of checks a second cost at most
	// fifty wake-ups (a check starts up to minTick late, which does
	// not add up from one interval to the next).
	minTick = 20 * time.Millisecond
	// workerIdle is how long a worker waits for a check before it ends.
	workerIdle = 10 * time.Second
)

// Want is one owner's check in the desired set given to Update.
type Want struct {
	Owner Owner
	// Spec is the effective spec (Merge of the service's and the real
	// server's blocks); unset keys take their defaults. Type none means
	// no check: the owner is not tracked.
	Spec Spec
	// Restore seeds the state of a check that this Update starts (the
	// state kept in state_dir before a restart): StateUp makes a real
	// server that was up stay up until it fails fall checks. It is ignored
	// for a check already running.
	Restore State
}

// Transition is a change of an owner's health.
type Transition struct {
	Owner    Owner
	From, To State
	// Reason is "down: HTTP 503 after 3 checks" and the like.
	Reason string
	// Result is the check that decided it (zero when the owner joined a
	// check already in that state).
	Result Result
	At     time.Time
}

// Sink receives transitions in batches, from one goroutine at a time. A
// slow sink delays later batches (the transitions of one owner are merged
// meanwhile) but never the checks.
type Sink interface {
	HealthChanged(ctx context.Context, batch []Transition)
}

// Status is the current health of one owner.
type Status struct {
	Owner     Owner
	Target    netip.AddrPort // what is checked
	Type      string
	OnFailure string
	State     State
	Reason    string
	Since     time.Time
	Checks    uint64   // checks run since this check started
	Last      Result   // the last check (zero before the first)
	History   []Result // the last checks, oldest first
	Shared    int      // owners sharing the check, this one included
}

// Options configure a Manager.
type Options struct {
	Sink Sink
	// Log receives one line per transition of a check (nil: none).
	Log *slog.Logger
	// MaxConcurrent bounds the checks under way at once in the event
	// loop (plain tcp, status-only http) and, apart from those, the
	// worker goroutines that run the other checks; a check due while all
	// workers are busy waits for one.
	MaxConcurrent int
	// BatchWindow and BatchMax: a batch goes to the sink BatchWindow after
	// its first transition or once it holds BatchMax owners.
	BatchWindow time.Duration
	BatchMax    int
	// History is the number of results kept per check.
	History int

	newChecker func(Spec, Target) (Checker, error) // tests
	rand       func(n int64) int64                 // tests: jitter
}

// Manager schedules the checks of a desired set of owners. Update may be
// called before and while Run runs; Status and the metrics are available
// at any time.
type Manager struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	batch   *batcher
	jobs    chan job // to idle workers
	workers atomic.Int64
	loop    atomic.Pointer[loop] // while Run runs
	wg      sync.WaitGroup

	mu      sync.Mutex
	started bool
	probes  map[probeKey]*probe
	owners  map[Owner]*owned
	queue   probeQueue
}

// probe is one check of one target, shared by every owner whose Want
// yields the same key.
type probe struct {
	key     probeKey
	spec    Spec
	target  Target
	checker Checker
	machine *Machine
	owners  []*owned // usually one or a few
	next    time.Time
	index   int // in the queue, -1 when not queued
	removed bool
	checks  uint64
	history []Result // ring of opts.History
	head    int
	obs     prometheus.Observer
	passed  prometheus.Counter
	failed  prometheus.Counter
	rc      reactive // how the event loop runs it; nil: by a worker
}

// owned is the manager's record of one owner.
type owned struct {
	owner       Owner
	probe       *probe
	onFailure   string
	state       State // as last delivered (or seeded)
	transitions [3]uint64
}

// NewManager returns a manager; Run runs it.
func NewManager(opts Options) *Manager {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.BatchWindow <= 0 {
		opts.BatchWindow = DefaultBatchWindow
	}
	if opts.BatchMax <= 0 {
		opts.BatchMax = DefaultBatchMax
	}
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.newChecker == nil {
		opts.newChecker = New
	}
	if opts.rand == nil {
		opts.rand = rand.Int64N
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		opts:    opts,
		log:     log,
		metrics: newMetrics(),
		batch:   newBatcher(opts.BatchWindow, opts.BatchMax),
		jobs:    make(chan job),
		probes:  map[probeKey]*probe{},
		owners:  map[Owner]*owned{},
		queue:   newProbeQueue(),
	}
}

// planned is one Want resolved to its check.
type planned struct {
	want   Want
	spec   Spec
	target Target
	key    probeKey
}

// probeKey identifies a check: a digest of its target and spec (and, for
// exec checks, of its environment).
type probeKey [sha256.Size]byte

// Update makes the desired set wants the set of checks: checks no owner
// wants any more stop, new ones start (at a random point of their first
// interval), and unchanged ones keep their state and history. An owner
// whose check changed joins the new check with its previous state. If a
// check cannot be built, nothing changes and the error says why.
func (m *Manager) Update(wants []Want) error {
	plan := make(map[Owner]planned, len(wants))
	var errs []error
	for _, w := range wants {
		if w.Spec.Type == TypeNone {
			continue
		}
		if _, dup := plan[w.Owner]; dup {
			errs = append(errs, fmt.Errorf("%s is listed twice", w.Owner))
			continue
		}
		s := w.Spec.WithDefaults()
		addr := TargetOf(&s, w.Owner.Real)
		t := Target{Addr: addr}
		text := addr.String() + " " + s.Key()
		if s.Type == TypeExec {
			t.Env = ExecEnv(w.Owner, addr)
			text += " " + strings.Join(t.Env, " ")
		}
		key := probeKey(sha256.Sum256([]byte(text)))
		plan[w.Owner] = planned{want: w, spec: s, target: t, key: key}
	}

	// Build the checkers of new checks before changing anything.
	m.mu.Lock()
	built := map[probeKey]Checker{}
	for _, p := range plan {
		if _, ok := m.probes[p.key]; ok {
			continue
		}
		if _, ok := built[p.key]; ok {
			continue
		}
		c, err := m.opts.newChecker(p.spec, p.target)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.want.Owner, err))
			continue
		}
		built[p.key] = c
	}
	m.mu.Unlock()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	// Owners that leave, or whose check changed, leave their probe.
	prev := map[Owner]State{}
	for o, ow := range m.owners {
		p, keep := plan[o]
		if keep && p.key == ow.probe.key {
			ow.onFailure = p.spec.OnFailure
			continue
		}
		m.detach(ow)
		if keep {
			prev[o] = ow.state
		} else {
			delete(m.owners, o)
		}
	}
	// Seeds of the checks that start now.
	seeds := map[probeKey]State{}
	for o, p := range plan {
		if ow := m.owners[o]; ow != nil && ow.probe != nil {
			continue
		}
		seed, ok := prev[o]
		if !ok {
			seed = p.want.Restore
		}
		if cur, ok := seeds[p.key]; !ok || seed == StateUp || seed == StateDown && cur == StateUnknown {
			seeds[p.key] = seed
		}
	}
	var out []Transition
	for o, p := range plan {
		ow := m.owners[o]
		if ow != nil && ow.probe != nil {
			continue
		}
		pr := m.probes[p.key]
		if pr == nil {
			pr = m.start(p, built[p.key], seeds[p.key], now)
		}
		if ow == nil {
			ow = &owned{owner: o, state: p.want.Restore}
			m.owners[o] = ow
		}
		ow.probe, ow.onFailure = pr, p.spec.OnFailure
		pr.owners = append(pr.owners, ow)
		if st := pr.machine.State(); st != ow.state {
			out = append(out, Transition{Owner: o, From: ow.state, To: st, Reason: pr.machine.Reason(), At: now})
			ow.state = st
			ow.transitions[st]++
		}
	}
	m.batch.add(out...)
	m.poke()
	return nil
}

// start creates and queues a probe. Its first check comes at a random
// point of its first interval, which spreads checks over the interval.
func (m *Manager) start(p planned, c Checker, seed State, now time.Time) *probe {
	iv := p.spec.Interval.D()
	pr := &probe{
		key: p.key, spec: p.spec, target: p.target, checker: c,
		machine: NewMachine(p.spec.Rise, p.spec.Fall, seed),
		next:    now.Add(time.Duration(m.opts.rand(int64(iv)))),
		index:   -1,
		history: make([]Result, 0, m.opts.History),
		obs:     m.metrics.duration.WithLabelValues(p.spec.Type),
		passed:  m.metrics.checks.WithLabelValues(p.spec.Type, "pass"),
		failed:  m.metrics.checks.WithLabelValues(p.spec.Type, "fail"),
	}
	if r, ok := c.(reactiveChecker); ok {
		pr.rc = r.reactive()
	}
	m.probes[p.key] = pr
	m.queue.push(pr)
	return pr
}

// detach takes ow off its probe, and stops the probe when it was the last
// owner. Called with m.mu held.
func (m *Manager) detach(ow *owned) {
	pr := ow.probe
	ow.probe = nil
	if pr == nil {
		return
	}
	pr.owners = slices.DeleteFunc(pr.owners, func(x *owned) bool { return x == ow })
	if len(pr.owners) > 0 {
		return
	}
	pr.removed = true
	delete(m.probes, pr.key)
	if pr.index >= 0 {
		m.queue.remove(pr.index)
	}
}

// poke wakes the scheduler to look at the queue again.
func (m *Manager) poke() {
	if l := m.loop.Load(); l != nil {
		l.wake()
	}
}

// Run runs the checks and delivers transitions until ctx ends, then waits
// for the running checks to return. Transitions still waiting for a
// batch when ctx ends are dropped: Status has them. Run may be called
// once.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("healthz: Manager.Run called twice")
	}
	m.started = true
	m.mu.Unlock()

	var bw sync.WaitGroup
	bw.Add(1)
	go func() {
		defer bw.Done()
		m.batch.run(ctx, m.opts.Sink)
	}()
	l, err := newLoop(m)
	if err != nil {
		return fmt.Errorf("health checks: %w", err)
	}
	m.loop.Store(l)
	l.run(ctx)
	m.loop.Store(nil)
	m.wg.Wait()
	l.close()
	bw.Wait()
	return nil
}

// job is a check for a worker: run finishes it.
type job struct {
	p   *probe
	run func(context.Context) Result
}

// hand gives j to an idle worker, or to a new one while fewer than
// MaxConcurrent run, or else waits for a worker to be free. It returns
// false when ctx ended.
func (m *Manager) hand(ctx context.Context, j job) bool {
	for {
		select {
		case m.jobs <- j:
			return true
		default:
		}
		if n := m.workers.Load(); n < int64(m.opts.MaxConcurrent) {
			if m.workers.CompareAndSwap(n, n+1) {
				m.wg.Add(1)
				go m.work(ctx, j)
				return true
			}
			continue
		}
		// All busy: wait for one, looking again now and then in case a
		// worker left meanwhile.
		select {
		case m.jobs <- j:
			return true
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// work runs checks until ctx ends or it has been idle for workerIdle. A
// long-lived goroutine keeps the stack a check needs, which a new
// goroutine per check would grow again every time.
func (m *Manager) work(ctx context.Context, j job) {
	defer m.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		m.check(ctx, j)
		idle.Reset(workerIdle)
		select {
		case j = <-m.jobs:
		case <-idle.C:
			m.workers.Add(-1)
			return
		case <-ctx.Done():
			return
		}
	}
}

// check runs j's check, bounded by the spec's timeout, and records it.
func (m *Manager) check(ctx context.Context, j job) {
	p := j.p
	cctx, cancel := context.WithTimeout(ctx, p.spec.Timeout.D())
	r := j.run(cctx)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: the result says nothing about the target
	}
	if r.At.IsZero() {
		r.At = time.Now().Add(-r.Latency)
	}
	m.record(p, r)
}

// record feeds r to p's state machine, delivers a transition to every
// owner, and queues p's next check.
func (m *Manager) record(p *probe, r Result) {
	p.obs.Observe(r.Latency.Seconds())
	if r.OK {
		p.passed.Inc()
	} else {
		p.failed.Inc()
		m.metrics.errors.WithLabelValues(p.spec.Type, r.Kind).Inc()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.removed {
		return
	}
	p.checks++
	if len(p.history) < cap(p.history) {
		p.history = append(p.history, r)
	} else {
		p.history[p.head] = r
		p.head = (p.head + 1) % len(p.history)
	}
	from, changed := p.machine.Observe(r)
	if changed {
		to := p.machine.State()
		m.log.Info("health check "+to.String(), "check", p.spec.Type, "target", p.target.Addr.String(),
			"from", from.String(), "reason", p.machine.Reason(), "latency", r.Latency.Round(time.Microsecond),
			"owners", ownerNames(p.owners))
		out := make([]Transition, 0, len(p.owners))
		for _, ow := range p.owners {
			if ow.state == to {
				continue
			}
			out = append(out, Transition{Owner: ow.owner, From: ow.state, To: to, Reason: p.machine.Reason(), Result: r, At: p.machine.Since()})
			ow.state = to
			ow.transitions[to]++
		}
		m.batch.add(out...)
	}
	p.next = p.next.Add(p.spec.Interval.D())
	if now := time.Now(); p.next.Before(now) {
		p.next = now
	}
	m.queue.push(p)
	// The next check of p comes an interval later: the scheduler, already
	// set to wake for an earlier one, needs no wake-up for it.
	if p.index == 0 {
		m.poke()
	}
}

// ownerNames lists the services of owners for a log line.
func ownerNames(owners []*owned) string {
	names := make([]string, 0, len(owners))
	for _, ow := range owners {
		names = append(names, ow.owner.Service)
	}
	slices.Sort(names)
	if len(names) > 8 {
		names = append(names[:8], fmt.Sprintf("and %d more", len(names)-8))
	}
	return strings.Join(names, ",")
}

// Status returns the health of every owner, sorted by service and real
// server.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.owners))
	for o, ow := range m.owners {
		p := ow.probe
		st := Status{
			Owner: o, Target: p.target.Addr, Type: p.spec.Type, OnFailure: ow.onFailure,
			State: ow.state, Reason: p.machine.Reason(), Since: p.machine.Since(),
			Checks: p.checks, History: p.orderedHistory(), Shared: len(p.owners),
		}
		if n := len(st.History); n > 0 {
			st.Last = st.History[n-1]
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int {
		return cmp.Or(strings.Compare(a.Owner.Service, b.Owner.Service), a.Owner.Real.Compare(b.Owner.Real))
	})
	return out
}

// Checks returns the number of distinct checks running.
func (m *Manager) Checks() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.probes)
}

func (p *probe) orderedHistory() []Result {
	out := make([]Result, 0, len(p.history))
	out = append(out, p.history[p.head:]...)
	return append(out, p.history[:p.head]...)
}
