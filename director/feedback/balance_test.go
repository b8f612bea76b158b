package feedback

import (
	"context"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// member builds a known Member at weight w (configured c) with share s
// and utilisation u.
func member(c, w int, s, u float64) Member {
	return Member{Configured: c, Weight: w, Share: s, Load: u / s, Known: true, Spread: 1}
}

func TestBalance(t *testing.T) {
	// Two servers, configured 100 each, equal shares, at 40 % and 80 %:
	// capacities 1/0.8 and 1/1.6 (in units of the offered load), u* =
	// 1 / (1.25 + 0.625) = 53 %, parts 200 x 1.25/1.875 = 133 and 67.
	a, b := member(100, 100, 0.5, 0.4), member(100, 100, 0.5, 0.8)
	noisy := func(m Member, n float64) Member { m.Noise = n; return m }
	idle := member(100, 100, 0.2, 0.03)
	tests := []struct {
		name string
		pool []Member
		i    int
		want int
		move bool
		why  string // substring
	}{
		{"the busier server gets less", []Member{a, b}, 1, 67, true, "utilisation 80%, pool at balance 53%"},
		{"the idler server gets more", []Member{a, b}, 0, 133, true, "utilisation 40%, pool at balance 53%"},
		{"equal utilisation moves nothing", []Member{a, member(100, 100, 0.5, 0.4)}, 0, 100, false, ""},
		{"an unknown load keeps the weight", []Member{a, {Configured: 100, Weight: 100, Share: 0.5}}, 1, 100, false, ""},
		{"an unknown load is left out of the pool", []Member{a, {Configured: 100, Weight: 100, Share: 0.5}}, 0, 100, false, ""},
		{"nothing moves while an agent has not answered", []Member{a, b, {Configured: 100, Weight: 100, Pending: true}}, 1, 100, false, ""},
		{"within 2 standard errors of u*: noise, no move", []Member{noisy(a, 0.07), noisy(b, 0.07)}, 0, 100, false, ""},
		{"beyond 2 standard errors: a move", []Member{noisy(a, 0.06), noisy(b, 0.06)}, 0, 133, true, ""},
		{"the band narrows as replies add up", []Member{func() Member { m := noisy(a, 0.07); m.Spread = 0.5; return m }(), noisy(b, 0.07)}, 0, 133, true, ""},
		{"the noise is the pool's median", []Member{noisy(a, 0.01), noisy(b, 0.07), noisy(member(100, 100, 0.5, 0.4), 0.07)}, 0, 100, false, ""},
		{"a move within dead_band of the weight is not made", []Member{member(100, 100, 0.5, 0.5), member(100, 100, 0.5, 0.52)}, 1, 100, false, ""},
		{"a move beyond dead_band of the weight is made", []Member{member(100, 100, 0.5, 0.5), member(100, 100, 0.5, 0.56)}, 1, 94, true, ""},
		{"an idle server tells nothing: left out of the pool", []Member{a, b, idle}, 1, 67, true, ""},
		{"an idle server at its configured weight keeps it", []Member{a, b, idle}, 2, 100, false, ""},
		{"an idle server below its configured weight goes back to it", []Member{a, b, member(100, 30, 0.1, 0.02)}, 2, 100, true, "too little to measure"},
		{"configured weights set the level", []Member{member(200, 150, 0.5, 0.4), member(100, 150, 0.5, 0.8)}, 0, 200, true, ""},
		{"configured weights set the level, second", []Member{member(200, 150, 0.5, 0.4), member(100, 150, 0.5, 0.8)}, 1, 100, true, ""},
		{"at its part already: no move", []Member{member(100, 133, 0.667, 0.533), member(100, 67, 0.333, 0.533)}, 0, 133, false, ""},
		{"more offered load alike moves nothing", []Member{member(100, 133, 0.667, 0.8), member(100, 67, 0.333, 0.8)}, 1, 67, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, why, move := Balance(tc.pool, tc.i, 0.05)
			if move != tc.move || want != tc.want && move {
				t.Fatalf("Balance = %d %q %v, want %d %v", want, why, move, tc.want, tc.move)
			}
			if !move && want != tc.pool[tc.i].Weight {
				t.Fatalf("no move but want %d, weight %d", want, tc.pool[tc.i].Weight)
			}
			if !strings.Contains(why, tc.why) {
				t.Fatalf("why %q, want it to hold %q", why, tc.why)
			}
		})
	}
}

func TestLoadEstimate(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	var e loadEstimate
	if e.known() || e.noise() != 0 {
		t.Fatal("a new estimate is known")
	}
	// A running mean of x = util/share, spread 1/n.
	for i, u := range []float64{0.40, 0.44, 0.36, 0.40} {
		e.add(u, 0.5)
		if !e.known() || e.n != i+1 || !near(e.spread, 1/float64(i+1)) {
			t.Fatalf("reply %d: %+v", i, e)
		}
	}
	if !near(e.mean, 0.8) {
		t.Fatalf("mean %v, want 0.8", e.mean)
	}
	if e.dof != 3 || e.noise() < minNoise || e.noise() > 0.06 {
		t.Fatalf("noise %v after %d deviations", e.noise(), e.dof)
	}
	// Weight-invariant: the same load at another share gives the same x.
	e.add(0.2, 0.25)
	if !near(e.mean, 0.8) {
		t.Fatalf("mean %v after the same load at share 0.25", e.mean)
	}
	// A lone outlier is held back and dropped.
	before := e
	e.add(0.9, 0.5)
	if e.mean != before.mean || e.shift != 1 {
		t.Fatalf("outlier taken: %+v", e)
	}
	e.add(0.41, 0.5)
	if e.shift != 0 || e.n != before.n+1 {
		t.Fatalf("after the outlier: %+v", e)
	}
	// Two on the same side: a new level from the two.
	e.add(0.9, 0.5)
	e.add(0.92, 0.5)
	if !near(e.mean, 1.82) || e.n != 2 || e.dof != before.dof+1 {
		t.Fatalf("level shift: %+v", e)
	}
	// Saturated: a lower bound taken at once; the next reply below
	// saturation starts again. The load is taken as satGuess times the
	// bound.
	e.add(1, 0.25)
	if !near(e.mean, 4*satGuess) || !e.saturated {
		t.Fatalf("saturated: %+v", e)
	}
	e.add(1, 0.5) // a lower bound below the estimate changes nothing
	if !near(e.mean, 4*satGuess) {
		t.Fatalf("lower lower bound: %+v", e)
	}
	e.add(0.5, 0.1)
	if !near(e.mean, 5) || e.n != 1 || e.saturated {
		t.Fatalf("after saturation: %+v", e)
	}
	// The window caps the mean at loadWindow replies.
	for range 3 * loadWindow {
		e.add(0.5, 0.1)
	}
	if e.n != loadWindow || e.dof != loadWindow || e.noise() != minNoise {
		t.Fatalf("window: %+v noise %v", e, e.noise())
	}
}

// pctReply is an agent reply "N%".
func pctReply(n int) agentcheck.Reply {
	return agentcheck.Reply{WeightKind: agentcheck.WeightPercent, Weight: n}
}

func TestControllerBalanceMode(t *testing.T) {
	pool, a, b, at := twoInPool()

	// a answers first: b has not, nothing moves.
	if d, changed := a.Observe(pctReply(60), at(2)); changed || d.Weight != 100 {
		t.Fatalf("a alone: %+v %v", d, changed)
	}
	// b at 80 %: the pool is whole, b gets its part.
	d, changed := b.Observe(pctReply(20), at(2))
	if !changed || d.Weight != 67 || !strings.Contains(d.Reason, "agent reports 20% headroom, utilisation 80%, pool at balance 53%") {
		t.Fatalf("b: %+v %v", d, changed)
	}
	if !near(d.Capacity, 0.67) {
		t.Fatalf("capacity %v", d.Capacity)
	}
	// b's first reply completed the pool: a takes its part at once, not
	// at its next reply, and the pool says so.
	moved := pool.TakeMoved()
	if len(moved) != 1 || moved[0].Ctl != a || moved[0].Prev.Weight != 100 || a.Decision().Weight != 133 ||
		!strings.HasPrefix(a.Decision().Reason, "the pool's first replies are in: utilisation 40%") {
		t.Fatalf("a when the pool completed: %+v, decision %+v", moved, a.Decision())
	}
	if m := pool.TakeMoved(); len(m) != 0 {
		t.Fatalf("moved twice: %+v", m)
	}
	// a's next reply was measured while the shares moved: left out.
	n := a.est.n
	if d, changed := a.Observe(pctReply(55), at(4)); changed || d.Weight != 133 || a.est.n != n {
		t.Fatalf("a after the pool moved: %+v %v (replies %d, before %d)", d, changed, a.est.n, n)
	}
	// Balanced: replies at 53 % each move nothing.
	for s := 6; s <= 20; s += 2 {
		for _, c := range []*Controller{a, b} {
			if d, changed := c.Observe(pctReply(47), at(s)); changed {
				t.Fatalf("balanced pool moved at %ds: %+v", s, d)
			}
		}
	}
	// weight:N is the agent's own choice.
	if d, changed := b.Observe(agentcheck.Reply{WeightKind: agentcheck.WeightAbsolute, Weight: 40}, at(22)); !changed || d.Weight != 40 || b.est.known() {
		t.Fatalf("weight:40: %+v %v", d, changed)
	}
	// A stale agent: the configured weight, the load forgotten.
	if d, changed := a.Fail(at(40), nil); !changed || d.Weight != 100 || !d.Stale || a.est.known() {
		t.Fatalf("stale: %+v %v", d, changed)
	}
	// drain: no traffic, no measurement.
	if d, _ := b.Observe(agentcheck.Reply{Admin: agentcheck.AdminDrain, WeightKind: agentcheck.WeightPercent, Weight: 100}, at(42)); d.Effective() != 0 {
		t.Fatalf("drain: %+v", d)
	}
	if _, changed := b.Observe(pctReply(100), at(44)); changed || b.est.known() {
		t.Fatalf("a drained server measured: %+v", b.est)
	}
}

// TestBalanceSaturation: a reply of satHeadroom or less is saturation:
// the server is cut beyond its bound at once; a saturated reply measured
// after its share fell may predate the cut and is left out; one at a
// steady share cuts again.
func TestBalanceSaturation(t *testing.T) {
	pool, a, b, at := twoInPool()
	a.Observe(pctReply(50), at(2))
	// 2 % headroom at share 0.5: taken as 150 %, x = 3 against a's 1.
	if d, changed := b.Observe(pctReply(2), at(2)); !changed || d.Weight != 50 || !near(b.est.mean, 3) {
		t.Fatalf("b saturated: %+v %v, estimate %+v", d, changed, b.est)
	}
	pool.TakeMoved()
	// Still 0 % right after the cut: it may predate it, left out.
	if d, changed := b.Observe(pctReply(0), at(4)); changed || !near(b.est.mean, 3) {
		t.Fatalf("b saturated after the cut: %+v %v, estimate %+v", d, changed, b.est)
	}
	// 0 % at the new share held for an interval: saturated there too.
	if d, changed := b.Observe(pctReply(0), at(6)); !changed || d.Weight >= 50 || !near(b.est.mean, 1.5/b.pool.share(b, at(5))) {
		t.Fatalf("b saturated at its new share: %+v %v, estimate %+v", d, changed, b.est)
	}
	// 3 % is a measurement.
	if b.Observe(pctReply(3), at(10)); b.est.saturated {
		t.Fatalf("3 %% taken as saturation: %+v", b.est)
	}
}

// twoInPool makes a balance pool of two real servers of configured
// weight 100, and a clock in seconds from the start.
func twoInPool() (*Pool, *Controller, *Controller, func(int) time.Time) {
	sp := spec(func(s *Spec) { s.Mode = ModeBalance })
	start := time.Unix(1000, 0)
	pool := NewPool()
	a, b := NewController(sp, 100, start), NewController(sp, 100, start)
	pool.Add(a)
	pool.Add(b)
	return pool, a, b, func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
}

func near(a, b float64) bool { return math.Abs(a-b) < 0.005 }

func TestPollerPools(t *testing.T) {
	sp := Defaults()
	bal := spec(func(s *Spec) { s.Mode = ModeBalance })
	var targets []Target[int]
	for i, tc := range []struct {
		service string
		spec    Spec
	}{{"web", bal}, {"web", bal}, {"api", bal}, {"static", sp}} {
		targets = append(targets, Target[int]{Key: i, Service: tc.service, Server: "s", Agent: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(3262+i)), Weight: 100, Spec: tc.spec})
	}
	p, err := NewPoller(targets, nullSink{}, Options{}) // never run: nothing is polled
	if err != nil {
		t.Fatal(err)
	}
	ctl := map[int]*Controller{}
	for _, a := range p.agents {
		for _, tg := range a.targets {
			ctl[tg.Key] = tg.ctl
		}
	}
	if ctl[0].pool == nil || ctl[0].pool != ctl[1].pool || len(ctl[0].pool.ctls) != 2 {
		t.Errorf("web's servers do not share a pool")
	}
	if ctl[2].pool == nil || ctl[2].pool == ctl[0].pool {
		t.Errorf("api has no pool of its own")
	}
	if ctl[3].pool != nil {
		t.Errorf("a capacity-mode service has a pool")
	}
}

// TestPollerBalanceMode: the poller runs a service in balance mode with
// real agents (lvs-node's wire protocol, on 127.0.0.1): the busier server
// gets less, the idler more, and a reload that changes one server keeps
// the other's state in a new pool with the new one.
func TestPollerBalanceMode(t *testing.T) {
	a := newTestAgent(t, "up 60%\n") // 40 % busy
	b := newTestAgent(t, "up 20%\n") // 80 % busy
	sink := &recSink{}
	bal := fastSpec(func(s *Spec) { s.Mode = ModeBalance })
	ta := Target[string]{Key: "a", Service: "web", Agent: a.addr(), Weight: 100, Spec: bal}
	tb := Target[string]{Key: "b", Service: "web", Agent: b.addr(), Weight: 100, Spec: bal}
	p := runPoller(t, sink, ta, tb)
	waitFor(t, "a above 100 and b below", func() bool {
		x, y := sink.of("a"), sink.of("b")
		return len(x) > 0 && x[0].Weight > 100 && len(y) > 0 && y[0].Weight < 100
	})
	if y := sink.of("b"); y[0].Weight != 67 || !strings.Contains(y[0].Reason, "utilisation 80%") {
		t.Errorf("b's first move: %+v, want 67 (its part of 200 at 80 %% against 40 %%)", y[0])
	}
	// The second first reply moved both: the other's move came through
	// the sink with the pool's reason.
	if x, y := sink.of("a")[0], sink.of("b")[0]; strings.HasPrefix(x.Reason, "the pool's first replies are in") ==
		strings.HasPrefix(y.Reason, "the pool's first replies are in") {
		t.Errorf("first moves: a %q, b %q; want one made by the other's reply", x.Reason, y.Reason)
	}
	ctlOf := func(key string) *Controller {
		p.mu.Lock()
		defer p.mu.Unlock()
		return controllerOf(p, key)
	}
	kept := ctlOf("b")
	ta.Weight = 50
	if err := p.SetTargets(context.Background(), []Target[string]{ta, tb}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload in force", func() bool { c := ctlOf("a"); return c != nil && c.Configured() == 50 })
	p.mu.Lock()
	defer p.mu.Unlock()
	na := controllerOf(p, "a")
	if kept != controllerOf(p, "b") || kept.pool == nil || kept.pool != na.pool || len(kept.pool.ctls) != 2 {
		t.Errorf("after the reload b is not kept in one pool with the new a")
	}
}

// controllerOf finds key's controller; p.mu must be held.
func controllerOf(p *Poller[string], key string) *Controller {
	for _, ag := range p.agents {
		for _, tg := range ag.targets {
			if tg.Key == key {
				return tg.ctl
			}
		}
	}
	return nil
}

// runPoller starts a poller of targets for the test.
func runPoller(t *testing.T, sink *recSink, targets ...Target[string]) *Poller[string] {
	t.Helper()
	p, err := NewPoller(targets, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, p)
	return p
}
