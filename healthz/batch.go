package healthz

import (
	"context"
	"sync"
	"time"
)

// batcher collects transitions for the sink. Adding never blocks on the
// sink: while a batch waits or the sink is busy, a later transition of an
// owner already waiting replaces that owner's entry (keeping its From),
// so at most one entry per owner is held.
type batcher struct {
	window time.Duration
	max    int
	signal chan struct{}

	mu      sync.Mutex
	pending []Transition
	index   map[Owner]int
}

func newBatcher(window time.Duration, max int) *batcher {
	return &batcher{window: window, max: max, signal: make(chan struct{}, 1), index: map[Owner]int{}}
}

func (b *batcher) add(ts ...Transition) {
	if len(ts) == 0 {
		return
	}
	b.mu.Lock()
	for _, t := range ts {
		if i, ok := b.index[t.Owner]; ok {
			from := b.pending[i].From
			b.pending[i] = t
			b.pending[i].From = from
			continue
		}
		b.index[t.Owner] = len(b.pending)
		b.pending = append(b.pending, t)
	}
	b.mu.Unlock()
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

// take returns the pending transitions, less those that came back to
// where they started, and empties the batch.
func (b *batcher) take() []Transition {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.pending[:0:0]
	for _, t := range b.pending {
		if t.From != t.To {
			out = append(out, t)
		}
	}
	b.pending = b.pending[:0]
	clear(b.index)
	return out
}

func (b *batcher) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// run delivers batches to sink until ctx ends: window after the first
// transition of a batch, or as soon as it holds max owners.
func (b *batcher) run(ctx context.Context, sink Sink) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.signal:
		}
		if b.size() == 0 {
			continue
		}
		timer.Reset(b.window)
	fill:
		for b.size() < b.max {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
				break fill
			case <-b.signal:
			}
		}
		timer.Stop()
		if batch := b.take(); len(batch) > 0 && sink != nil {
			sink.HealthChanged(ctx, batch)
		}
	}
}
