package feedback

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// Defaults of the poller.
const (
	DefaultConcurrency = 256
	DefaultBatchDelay  = 50 * time.Millisecond
)

// Target is one real server of one virtual service whose agent is polled.
type Target[K comparable] struct {
	// Key identifies the real server in the caller's terms; updates carry
	// it back.
	Key K
	// Service and Server name the target in logs and metric labels.
	Service string
	Server  string
	// Agent is where the agent listens: the real server's address and
	// Spec.Port.
	Agent netip.AddrPort
	// Weight is the configured weight.
	Weight int
	// Spec is the service's feedback block, validated.
	Spec Spec
}

// Update is a change of one target's decision.
type Update[K comparable] struct {
	Key K
	Decision
}

// Sink receives changes in batches: only targets whose weight moved
// beyond the dead band, or whose admin state, agent health or staleness
// changed. FeedbackChanged is called from one goroutine at a time; while
// it runs, later changes gather and the latest per key is delivered next.
type Sink[K comparable] interface {
	FeedbackChanged(ctx context.Context, updates []Update[K])
}

// Options tune a Poller.
type Options struct {
	// Concurrency bounds the polls in flight. Default 256.
	Concurrency int
	// BatchDelay is how long changes gather before the sink sees them.
	// Default 50ms.
	BatchDelay time.Duration
	// Log receives one line per weight change, with its reason. Nil
	// discards.
	Log *slog.Logger
	// Dial opens the connections to the agents (a source address, a
	// network namespace). Nil dials with net.Dialer.
	Dial DialFunc
}

// Poller polls the agents of the configured real servers and hands the
// controllers' changes to a sink. Agents are polled on their own
// schedules with at most Concurrency polls at once, each bounded by its
// spec's timeout, so one slow agent never delays the others. Targets that
// share an agent (one real server in several services with the same port
// and token) share its polls.
type Poller[K comparable] struct {
	sink  Sink[K]
	opts  Options
	log   *slog.Logger
	reset chan []*agent[K]

	mu     sync.Mutex // guards agents and what they hold, for Collect
	agents []*agent[K]
	byCtl  map[*Controller]*target[K] // the targets in balance mode
}

type agentKey struct {
	addr  netip.AddrPort
	token string
}

type agent[K comparable] struct {
	key      agentKey
	interval time.Duration
	timeout  time.Duration
	targets  []*target[K]
	// scheduling, owned by Run
	next     time.Time
	inflight bool
	index    int
	// counters, guarded by Poller.mu
	polls uint64
	errs  map[string]uint64
}

type target[K comparable] struct {
	Target[K]
	ctl     *Controller
	changes uint64
}

type result[K comparable] struct {
	a     *agent[K]
	reply agentcheck.Reply
	err   error
	at    time.Time
}

// NewPoller builds a poller for targets that hands changes to sink. Token
// files are read here.
func NewPoller[K comparable](targets []Target[K], sink Sink[K], opts Options) (*Poller[K], error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.BatchDelay <= 0 {
		opts.BatchDelay = DefaultBatchDelay
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Poller[K]{sink: sink, opts: opts, log: log, reset: make(chan []*agent[K])}
	agents, err := build(targets, nil, time.Now())
	if err != nil {
		return nil, err
	}
	p.byCtl = joinPools(agents)
	p.agents = agents
	return p, nil
}

// SetTargets replaces the targets while Run goes on. A target whose key,
// agent, configured weight and spec are unchanged keeps its state; others
// start at the configured weight. Token files are read again. On error
// nothing changes.
func (p *Poller[K]) SetTargets(ctx context.Context, targets []Target[K]) error {
	p.mu.Lock()
	old := p.agents
	p.mu.Unlock()
	agents, err := build(targets, old, time.Now())
	if err != nil {
		return err
	}
	select {
	case p.reset <- agents:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// build groups targets by agent, keeping the controllers of unchanged
// targets found in old.
func build[K comparable](targets []Target[K], old []*agent[K], now time.Time) ([]*agent[K], error) {
	kept := map[K]*target[K]{}
	for _, a := range old {
		for _, t := range a.targets {
			kept[t.Key] = t
		}
	}
	tokens := map[string]string{}
	byKey := map[agentKey]*agent[K]{}
	var agents []*agent[K]
	seen := map[K]bool{}
	for _, t := range targets {
		if seen[t.Key] {
			return nil, fmt.Errorf("feedback: target %v is listed twice", t.Key)
		}
		seen[t.Key] = true
		if !t.Agent.IsValid() || t.Agent.Port() == 0 {
			return nil, fmt.Errorf("feedback: target %s %s: no agent address", t.Service, t.Server)
		}
		if t.Spec.Interval <= 0 || t.Spec.Smoothing == nil || t.Spec.DeadBand == nil || t.Spec.MaxStep == nil {
			return nil, fmt.Errorf("feedback: target %s %s: the spec was not validated", t.Service, t.Server)
		}
		var tok string
		if f := t.Spec.TokenFile; f != "" {
			var ok bool
			if tok, ok = tokens[f]; !ok {
				var err error
				if tok, err = ReadToken(f); err != nil {
					return nil, err
				}
				tokens[f] = tok
			}
		}
		k := agentKey{addr: t.Agent, token: tok}
		a := byKey[k]
		if a == nil {
			a = &agent[K]{key: k, interval: t.Spec.Interval.D(), timeout: t.Spec.Timeout.D(), errs: map[string]uint64{}}
			byKey[k] = a
			agents = append(agents, a)
		}
		a.interval = min(a.interval, t.Spec.Interval.D())
		a.timeout = min(a.timeout, t.Spec.Timeout.D())
		nt := &target[K]{Target: t}
		if o := kept[t.Key]; o != nil && o.Agent == t.Agent && o.Weight == t.Weight && sameSpec(o.Spec, t.Spec) {
			nt.ctl, nt.changes = o.ctl, o.changes
		} else {
			nt.ctl = NewController(t.Spec, t.Weight, now)
		}
		a.targets = append(a.targets, nt)
	}
	// Spread the first polls over one interval.
	for i, a := range agents {
		a.next = now.Add(a.interval * time.Duration(i) / time.Duration(max(1, len(agents))))
	}
	return agents, nil
}

// joinPools puts the controllers of each service in balance mode into
// one new pool and returns their targets by controller. It changes
// controllers that may be in use: call it with Poller.mu held once Run
// may be running.
func joinPools[K comparable](agents []*agent[K]) map[*Controller]*target[K] {
	pools := map[string]*Pool{}
	byCtl := map[*Controller]*target[K]{}
	for _, a := range agents {
		for _, t := range a.targets {
			if t.Spec.Mode != ModeBalance {
				continue
			}
			p := pools[t.Service]
			if p == nil {
				p = NewPool()
				pools[t.Service] = p
			}
			p.Add(t.ctl)
			byCtl[t.ctl] = t
		}
	}
	return byCtl
}

func sameSpec(a, b Spec) bool {
	return a.Mode == b.Mode && a.Interval == b.Interval && a.Timeout == b.Timeout && a.MinWeight == b.MinWeight &&
		a.MaxWeight == b.MaxWeight && a.StaleAfter == b.StaleAfter && *a.Smoothing == *b.Smoothing &&
		*a.DeadBand == *b.DeadBand && *a.MaxStep == *b.MaxStep && a.Port == b.Port &&
		a.AgentHealth == b.AgentHealth && a.TokenFile == b.TokenFile
}

// Decisions returns every target's current decision.
func (p *Poller[K]) Decisions() []Update[K] {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Update[K]
	for _, a := range p.agents {
		for _, t := range a.targets {
			out = append(out, Update[K]{Key: t.Key, Decision: t.ctl.Decision()})
		}
	}
	return out
}

// Run polls until ctx is done.
func (p *Poller[K]) Run(ctx context.Context) error {
	results := make(chan result[K], p.opts.Concurrency)
	batches := make(chan []Update[K], 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range batches {
			p.sink.FeedbackChanged(ctx, b)
		}
	}()
	defer close(batches)

	pctx, cancelPolls := context.WithCancel(ctx)
	defer cancelPolls()
	q := &schedule[K]{}
	p.mu.Lock()
	for _, a := range p.agents {
		heap.Push(q, a)
	}
	p.mu.Unlock()
	running := 0
	var pending []Update[K]
	pendingIdx := map[K]int{}
	var flushAt time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	for {
		now := time.Now()
		for running < p.opts.Concurrency && q.Len() > 0 && !(*q)[0].next.After(now) {
			a := heap.Pop(q).(*agent[K])
			a.inflight = true
			running++
			wg.Add(1)
			go func(a *agent[K], token string) {
				defer wg.Done()
				r, err := poll(pctx, p.opts.Dial, a.key.addr, token, a.timeout)
				results <- result[K]{a: a, reply: r, err: err, at: time.Now()}
			}(a, a.key.token)
		}
		if len(pending) > 0 && !now.Before(flushAt) {
			select {
			case batches <- pending:
				pending, pendingIdx = nil, map[K]int{}
			default:
				flushAt = now.Add(p.opts.BatchDelay) // the sink is busy
			}
		}
		wake := now.Add(time.Hour)
		if q.Len() > 0 && running < p.opts.Concurrency {
			wake = (*q)[0].next
		}
		if len(pending) > 0 && flushAt.Before(wake) {
			wake = flushAt
		}
		timer.Reset(max(0, time.Until(wake)))
		select {
		case <-ctx.Done():
			// Polls in flight end at once; results has room for them.
			return nil
		case <-timer.C:
		case res := <-results:
			running--
			a := res.a
			a.inflight = false
			if !a.detached() {
				a.next = a.next.Add(a.interval)
				if a.next.Before(res.at) {
					a.next = res.at.Add(a.interval)
				}
				heap.Push(q, a)
				for _, u := range p.observe(a, res) {
					if len(pending) == 0 {
						flushAt = time.Now().Add(p.opts.BatchDelay)
					}
					if i, ok := pendingIdx[u.Key]; ok {
						pending[i] = u
					} else {
						pendingIdx[u.Key] = len(pending)
						pending = append(pending, u)
					}
				}
			}
		case agents := <-p.reset:
			p.mu.Lock()
			for _, a := range p.agents {
				a.index = -2 // detached: its poll in flight is dropped
			}
			p.byCtl = joinPools(agents)
			p.agents = agents
			p.mu.Unlock()
			*q = (*q)[:0]
			for _, a := range agents {
				heap.Push(q, a)
			}
		}
	}
}

func (a *agent[K]) detached() bool { return a.index == -2 }

// observe feeds a poll's result to the agent's targets and returns the
// changes, each logged with its reason.
func (p *Poller[K]) observe(a *agent[K], res result[K]) []Update[K] {
	p.mu.Lock()
	defer p.mu.Unlock()
	a.polls++
	var pe *PollError
	if res.err != nil {
		kind := ErrKindIO
		if errors.As(res.err, &pe) {
			kind = pe.Kind
		}
		a.errs[kind]++
	}
	var out []Update[K]
	for _, t := range a.targets {
		prev := t.ctl.Decision()
		var d Decision
		var changed bool
		if res.err != nil {
			d, changed = t.ctl.Fail(res.at, res.err)
		} else {
			d, changed = t.ctl.Observe(res.reply, res.at)
		}
		if changed {
			out = append(out, p.changed(t, prev, d))
		}
		// A first reply that completes a pool moves the other members
		// too (Pool.settle).
		if t.ctl.pool == nil {
			continue
		}
		for _, o := range t.ctl.pool.TakeMoved() {
			if ot := p.byCtl[o.Ctl]; ot != nil {
				out = append(out, p.changed(ot, o.Prev, o.Ctl.Decision()))
			}
		}
	}
	return out
}

// changed counts and logs a change of t's decision from prev to d.
func (p *Poller[K]) changed(t *target[K], prev, d Decision) Update[K] {
	t.changes++
	p.log.Info("feedback weight", "service", t.Service, "server", t.Server,
		"weight", d.Weight, "previous", prev.Weight, "capacity", fmt.Sprintf("%.2f", d.Capacity),
		"admin", d.Admin.String(), "agent_down", d.AgentDown, "stale", d.Stale, "reason", d.Reason)
	return Update[K]{Key: t.Key, Decision: d}
}

// schedule is a heap of agents by next poll time.
type schedule[K comparable] []*agent[K]

func (s schedule[K]) Len() int           { return len(s) }
func (s schedule[K]) Less(i, j int) bool { return s[i].next.Before(s[j].next) }
func (s schedule[K]) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].index, s[j].index = i, j
}
func (s *schedule[K]) Push(x any) {
	a := x.(*agent[K])
	a.index = len(*s)
	*s = append(*s, a)
}
func (s *schedule[K]) Pop() any {
	old := *s
	a := old[len(old)-1]
	*s = old[:len(old)-1]
	a.index = -1
	return a
}
