package healthz

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestProbeQueue: probes come out in the order of their next check,
// whatever was pushed and removed, and every probe knows its index.
func TestProbeQueue(t *testing.T) {
	q := newProbeQueue()
	r := rand.New(rand.NewPCG(1, 2))
	var live []*probe
	check := func() {
		t.Helper()
		for i, e := range q.items {
			if e.p.index != i {
				t.Fatalf("probe at %d has index %d", i, e.p.index)
			}
			if i > 0 && q.items[(i-1)/2].at > e.at {
				t.Fatalf("heap order broken at %d", i)
			}
		}
	}
	for range 2000 {
		switch n := r.IntN(10); {
		case n < 6:
			p := &probe{next: q.epoch.Add(time.Duration(r.IntN(1e6)))}
			q.push(p)
			live = append(live, p)
		case n < 8 && len(live) > 0:
			i := r.IntN(len(live))
			q.remove(live[i].index)
			if live[i].index != -1 {
				t.Fatal("a removed probe keeps an index")
			}
			live = slices.Delete(live, i, i+1)
		case q.len() > 0:
			want := slices.MinFunc(live, func(a, b *probe) int { return a.next.Compare(b.next) })
			if !q.peek().Equal(want.next) || !q.dueBy(want.next) || q.dueBy(want.next.Add(-1)) {
				t.Fatalf("peek %s, want %s", q.peek(), want.next)
			}
			p := q.pop()
			if !p.next.Equal(want.next) {
				t.Fatalf("pop gave %s, want %s", p.next, want.next)
			}
			live = slices.DeleteFunc(live, func(x *probe) bool { return x == p })
		}
		check()
	}
	if q.len() != len(live) {
		t.Fatalf("%d queued, %d live", q.len(), len(live))
	}
}
