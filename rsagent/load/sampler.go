package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// Combine names how readings are combined.
type Combine string

// Ways to combine.
const (
	CombineMin     Combine = "min"
	CombineAverage Combine = "average"
)

// Named is one configured source.
type Named struct {
	// Name identifies the source in metrics and details (cpu, psi, ...).
	Name string
	// Type is the source's type as configured.
	Type   string
	Source Source
	// Timeout bounds one reading.
	Timeout time.Duration
}

// SourceState is the last reading of one source.
type SourceState struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Capacity in percent; nil when the source gave none this round.
	Capacity *float64 `json:"capacity"`
	Health   string   `json:"health,omitempty"`
	Admin    string   `json:"admin,omitempty"`
	// Error of this round, if any.
	Error string `json:"error,omitempty"`
	// Seconds the reading took.
	Seconds float64 `json:"seconds"`
	// Errors and Timeouts count the rounds the source was skipped.
	Errors   uint64 `json:"errors"`
	Timeouts uint64 `json:"timeouts"`
	// Reads counts the rounds.
	Reads uint64 `json:"reads"`
}

// Snapshot is the result of one round.
type Snapshot struct {
	Time time.Time `json:"time"`
	// Capacity is the combined capacity in percent; nil when no source
	// gave one.
	Capacity *float64 `json:"capacity"`
	Combine  Combine  `json:"combine"`
	// Health is the worst health word of the sources, or none.
	Health agentcheck.Health `json:"-"`
	// Admin is the strictest admin word of the sources, or none.
	Admin   agentcheck.Admin `json:"-"`
	Sources []SourceState    `json:"sources"`
}

// ErrBusy: the previous reading of the source has not returned yet.
var ErrBusy = errors.New("the previous reading has not returned")

// Sampler reads its sources on an interval and keeps the last snapshot.
type Sampler struct {
	sources  []Named
	combine  Combine
	interval time.Duration

	mu    sync.Mutex
	snap  Snapshot
	state []SourceState
	busy  []bool
}

// NewSampler returns a sampler of sources combined by combine.
func NewSampler(sources []Named, combine Combine, interval time.Duration) (*Sampler, error) {
	switch combine {
	case "":
		combine = CombineMin
	case CombineMin, CombineAverage:
	default:
		return nil, fmt.Errorf("load: want combine min or average, got %q", combine)
	}
	if interval <= 0 {
		return nil, fmt.Errorf("load: interval must be above 0")
	}
	s := &Sampler{sources: sources, combine: combine, interval: interval,
		state: make([]SourceState, len(sources)), busy: make([]bool, len(sources))}
	for i, n := range sources {
		if n.Timeout <= 0 {
			return nil, fmt.Errorf("load: source %s: timeout must be above 0", n.Name)
		}
		s.state[i] = SourceState{Name: n.Name, Type: n.Type}
	}
	s.snap = Snapshot{Combine: combine, Sources: append([]SourceState(nil), s.state...)}
	return s, nil
}

// Snapshot returns the last round's result.
func (s *Sampler) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.snap
	out.Sources = append([]SourceState(nil), s.snap.Sources...)
	return out
}

// Run samples at once and then every interval until ctx is done.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.Sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type outcome struct {
	i   int
	r   Reading
	err error
	d   time.Duration
}

// Sample reads every source at once, each within its timeout, and stores
// and returns the combined snapshot. A source that has not returned by
// its timeout is counted as timed out and left to finish; it is not read
// again until it has.
func (s *Sampler) Sample(ctx context.Context) Snapshot {
	now := time.Now()
	results := make(chan outcome, len(s.sources))
	started := make([]bool, len(s.sources))
	var longest time.Duration
	s.mu.Lock()
	for i, n := range s.sources {
		if s.busy[i] {
			continue
		}
		s.busy[i] = true
		started[i] = true
		longest = max(longest, n.Timeout)
		go func(i int, n Named) {
			rctx, cancel := context.WithTimeout(ctx, n.Timeout)
			defer cancel()
			t0 := time.Now()
			r, err := n.Source.Read(rctx)
			if err == nil && rctx.Err() != nil {
				err = rctx.Err()
			}
			s.mu.Lock()
			s.busy[i] = false
			s.mu.Unlock()
			results <- outcome{i: i, r: r, err: err, d: time.Since(t0)}
		}(i, n)
	}
	s.mu.Unlock()

	got := make([]*outcome, len(s.sources))
	wait := time.NewTimer(longest + 50*time.Millisecond)
	defer wait.Stop()
	pending := 0
	for _, st := range started {
		if st {
			pending++
		}
	}
collect:
	for pending > 0 {
		select {
		case o := <-results:
			got[o.i] = &o
			pending--
		case <-wait.C:
			break collect
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{Time: now, Combine: s.combine}
	var vals []float64
	for i := range s.sources {
		st := &s.state[i]
		st.Reads++
		st.Capacity, st.Health, st.Admin, st.Error, st.Seconds = nil, "", "", "", 0
		o := got[i]
		switch {
		case o == nil && !started[i]:
			st.Timeouts++
			st.Error = "timeout: " + ErrBusy.Error()
		case o == nil:
			st.Timeouts++
			st.Error = "timeout: no reading within " + s.sources[i].Timeout.String()
		case o.err != nil:
			st.Seconds = o.d.Seconds()
			if errors.Is(o.err, context.DeadlineExceeded) {
				st.Timeouts++
				st.Error = "timeout: " + o.err.Error()
			} else {
				st.Errors++
				st.Error = o.err.Error()
			}
		default:
			st.Seconds = o.d.Seconds()
			if o.r.HasCapacity {
				v := o.r.Capacity
				st.Capacity = &v
				vals = append(vals, v)
			}
			if o.r.Health != agentcheck.HealthNone {
				st.Health = o.r.Health.String()
				if snap.Health == agentcheck.HealthNone || !snap.Health.Failed() && o.r.Health.Failed() {
					snap.Health = o.r.Health
				}
			}
			if o.r.Admin != agentcheck.AdminNone {
				st.Admin = o.r.Admin.String()
				snap.Admin = max(snap.Admin, o.r.Admin)
			}
		}
	}
	if len(vals) > 0 {
		c := vals[0]
		switch s.combine {
		case CombineAverage:
			sum := 0.0
			for _, v := range vals {
				sum += v
			}
			c = sum / float64(len(vals))
		default:
			for _, v := range vals {
				c = min(c, v)
			}
		}
		snap.Capacity = &c
	}
	snap.Sources = append([]SourceState(nil), s.state...)
	s.snap = snap
	return snap
}
