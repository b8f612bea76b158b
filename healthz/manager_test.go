package healthz

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/lvs-node/lvs-node/internal/config"
)

// recorder is a Sink that keeps every batch.
type recorder struct {
	mu      sync.Mutex
	batches [][]Transition
	block   chan struct{} // when set, HealthChanged waits for it
	entered atomic.Int64  // calls of HealthChanged begun
}

func (r *recorder) HealthChanged(ctx context.Context, batch []Transition) {
	r.entered.Add(1)
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, batch)
}

func (r *recorder) all() []Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Transition
	for _, b := range r.batches {
		out = append(out, b...)
	}
	return out
}

// last returns the last state delivered for each owner.
func (r *recorder) last() map[Owner]State {
	out := map[Owner]State{}
	for _, t := range r.all() {
		out[t.Owner] = t.To
	}
	return out
}

// counter is a TCP listener that counts the connections it accepts and
// can be stopped and started again on the same port.
type counter struct {
	t    *testing.T
	addr netip.AddrPort
	n    atomic.Int64
	mu   sync.Mutex
	l    net.Listener
}

func newCounter(t *testing.T) *counter {
	c := &counter{t: t}
	c.start("127.0.0.1:0")
	t.Cleanup(c.stop)
	return c
}

func (c *counter) start(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.l, c.addr = l, l.Addr().(*net.TCPAddr).AddrPort()
	c.mu.Unlock()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.n.Add(1)
			conn.Close()
		}
	}()
}

func (c *counter) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l != nil {
		c.l.Close()
		c.l = nil
	}
}

func (c *counter) restart() { c.start(c.addr.String()) }

func fast(typ string) Spec {
	return Spec{Type: typ, Interval: config.Duration(100 * time.Millisecond), Timeout: config.Duration(50 * time.Millisecond), Rise: 1, Fall: 1}
}

func owner(svc string, real netip.AddrPort) Owner {
	return Owner{Service: svc, VIP: netip.MustParseAddr("192.0.2.1"), Port: 80, Protocol: "tcp", Real: real}
}

// runManager runs m until the test ends and checks that it leaves no
// goroutine behind.
func runManager(t *testing.T, m *Manager) context.CancelFunc {
	t.Helper()
	opts := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("github.com/lvs-node/lvs-node/healthz.(*counter).start.func1"),
		goleak.IgnoreAnyFunction("github.com/lvs-node/lvs-node/healthz.(*webServer).ServeHTTP")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
		goleak.VerifyNone(t, opts...)
	}
	t.Cleanup(stop)
	return stop
}

// eventually waits up to 3 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func statusOf(m *Manager, o Owner) (Status, bool) {
	for _, s := range m.Status() {
		if s.Owner == o {
			return s, true
		}
	}
	return Status{}, false
}

func TestManagerDedup(t *testing.T) {
	srv := newCounter(t)
	sink := &recorder{}
	m := NewManager(Options{Sink: sink})
	var wants []Want
	for _, svc := range []string{"web", "api", "admin", "static", "img"} {
		wants = append(wants, Want{Owner: owner(svc, srv.addr), Spec: fast(TypeTCP)})
	}
	if err := m.Update(wants); err != nil {
		t.Fatal(err)
	}
	if n := m.Checks(); n != 1 {
		t.Fatalf("%d checks for one target shared by 5 services, want 1", n)
	}
	stop := runManager(t, m)
	eventually(t, "every owner up", func() bool {
		l := sink.last()
		for _, w := range wants {
			if l[w.Owner] != StateUp {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second)
	stop()
	st, _ := statusOf(m, wants[0].Owner)
	// One probe per interval (about 10 in the second), not one per service.
	if got := srv.n.Load(); got < 8 || got > 14 || got != int64(st.Checks) {
		t.Errorf("the server saw %d connections for %d checks; want about 10, one per interval", got, st.Checks)
	}
	if st.Shared != 5 {
		t.Errorf("status says the check is shared by %d owners", st.Shared)
	}
	if n := len(sink.all()); n != 5 {
		t.Errorf("%d transitions delivered, want one per owner", n)
	}
	if len(sink.batches) != 1 {
		t.Errorf("the 5 transitions of one check came in %d batches", len(sink.batches))
	}
}

func TestManagerDifferentSpecsAreNotShared(t *testing.T) {
	srv := newCounter(t)
	m := NewManager(Options{})
	slow := fast(TypeTCP)
	slow.Rise = 3
	remove := fast(TypeTCP)
	remove.OnFailure = OnFailureRemove
	if err := m.Update([]Want{
		{Owner: owner("a", srv.addr), Spec: fast(TypeTCP)},
		{Owner: owner("b", srv.addr), Spec: remove}, // on_failure does not change the check
		{Owner: owner("c", srv.addr), Spec: slow},
	}); err != nil {
		t.Fatal(err)
	}
	if n := m.Checks(); n != 2 {
		t.Errorf("%d checks, want 2 (rise differs, on_failure does not count)", n)
	}
}

func TestManagerDetectsFailureAndRecovery(t *testing.T) {
	srv := newCounter(t)
	sink := &recorder{}
	m := NewManager(Options{Sink: sink})
	s := fast(TypeTCP)
	s.Rise, s.Fall = 2, 3
	o := owner("web", srv.addr)
	if err := m.Update([]Want{{Owner: o, Spec: s}}); err != nil {
		t.Fatal(err)
	}
	runManager(t, m)
	eventually(t, "up", func() bool { return sink.last()[o] == StateUp })
	srv.stop()
	killed := time.Now()
	eventually(t, "down", func() bool { return sink.last()[o] == StateDown })
	// fall x interval + timeout, plus the batch window and some slack.
	if took, bound := time.Since(killed), 3*100*time.Millisecond+50*time.Millisecond+DefaultBatchWindow+300*time.Millisecond; took > bound {
		t.Errorf("down after %s, want within %s", took, bound)
	}
	ts := sink.all()
	down := ts[len(ts)-1]
	if down.From != StateUp || down.Reason != "down: connect: connection refused after 3 checks" || down.Result.Kind != KindRefused {
		t.Errorf("down transition %+v", down)
	}
	srv.restart()
	eventually(t, "up again", func() bool { return sink.last()[o] == StateUp })
	if st, _ := statusOf(m, o); !strings.HasPrefix(st.Reason, "up: connected after 2 checks") || len(st.History) < 5 || len(st.History) > DefaultHistory {
		t.Errorf("status %+v", st)
	}
}

func TestManagerRestoredState(t *testing.T) {
	srv := newCounter(t)
	srv.stop() // nothing answers
	sink := &recorder{}
	m := NewManager(Options{Sink: sink})
	s := fast(TypeTCP)
	s.Fall = 3
	up, fresh := owner("restored", srv.addr), owner("fresh", netip.MustParseAddrPort("127.0.0.1:1"))
	if err := m.Update([]Want{{Owner: up, Spec: s, Restore: StateUp}, {Owner: fresh, Spec: s}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := statusOf(m, up); st.State != StateUp {
		t.Fatalf("restored owner starts %s", st.State)
	}
	if st, _ := statusOf(m, fresh); st.State != StateUnknown {
		t.Fatalf("new owner starts %s, want unknown", st.State)
	}
	runManager(t, m)
	// The restored owner stays up until it fails fall checks.
	eventually(t, "first check", func() bool { st, _ := statusOf(m, up); return st.Checks >= 1 })
	if st, _ := statusOf(m, up); st.Checks < 3 && st.State != StateUp {
		t.Errorf("restored owner %s after %d failed checks (fall 3)", st.State, st.Checks)
	}
	eventually(t, "down", func() bool { return sink.last()[up] == StateDown })
	for _, tr := range sink.all() {
		if tr.Owner == up && tr.To == StateUp {
			t.Errorf("a transition to up was delivered for a restored owner: %+v", tr)
		}
	}
}

func TestManagerReloadKeepsState(t *testing.T) {
	a, b := newCounter(t), newCounter(t)
	sink := &recorder{}
	m := NewManager(Options{Sink: sink})
	oa, ob := owner("a", a.addr), owner("b", b.addr)
	if err := m.Update([]Want{{Owner: oa, Spec: fast(TypeTCP)}, {Owner: ob, Spec: fast(TypeTCP)}}); err != nil {
		t.Fatal(err)
	}
	runManager(t, m)
	eventually(t, "both up", func() bool { l := sink.last(); return l[oa] == StateUp && l[ob] == StateUp })
	eventually(t, "some history", func() bool { st, _ := statusOf(m, oa); return st.Checks >= 3 })
	before, _ := statusOf(m, oa)
	delivered := len(sink.all())

	// Reload: a unchanged, b removed, c added.
	c := newCounter(t)
	oc := owner("c", c.addr)
	if err := m.Update([]Want{{Owner: oa, Spec: fast(TypeTCP)}, {Owner: oc, Spec: fast(TypeTCP)}}); err != nil {
		t.Fatal(err)
	}
	after, _ := statusOf(m, oa)
	if after.State != StateUp || after.Checks < before.Checks || !after.Since.Equal(before.Since) || len(after.History) < len(before.History) {
		t.Errorf("the unchanged check lost its state: before %+v after %+v", before, after)
	}
	if _, ok := statusOf(m, ob); ok {
		t.Error("the removed owner is still listed")
	}
	if st, _ := statusOf(m, oc); st.State != StateUnknown {
		t.Errorf("the new owner starts %s", st.State)
	}
	time.Sleep(150 * time.Millisecond) // a check of b may have been running
	nb := b.n.Load()
	eventually(t, "c up", func() bool { return sink.last()[oc] == StateUp })
	time.Sleep(300 * time.Millisecond)
	if got := b.n.Load(); got != nb {
		t.Errorf("the removed check still runs: %d more connections", got-nb)
	}
	for _, tr := range sink.all()[delivered:] {
		if tr.Owner == oa {
			t.Errorf("the unchanged owner got a transition on reload: %+v", tr)
		}
	}

	// A changed check of an owner is a new check that starts in the
	// owner's state.
	changed := fast(TypeTCP)
	changed.Send = "HELLO\r\n"
	if err := m.Update([]Want{{Owner: oa, Spec: changed}, {Owner: oc, Spec: fast(TypeTCP)}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := statusOf(m, oa); st.State != StateUp || st.Checks != 0 {
		t.Errorf("changed check: %+v, want up with a fresh history", st)
	}
}

func TestManagerJoinRunningCheck(t *testing.T) {
	srv := newCounter(t)
	sink := &recorder{}
	m := NewManager(Options{Sink: sink})
	first, second := owner("first", srv.addr), owner("second", srv.addr)
	if err := m.Update([]Want{{Owner: first, Spec: fast(TypeTCP)}}); err != nil {
		t.Fatal(err)
	}
	runManager(t, m)
	eventually(t, "up", func() bool { return sink.last()[first] == StateUp })
	if err := m.Update([]Want{{Owner: first, Spec: fast(TypeTCP)}, {Owner: second, Spec: fast(TypeTCP)}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new owner told", func() bool { return sink.last()[second] == StateUp })
	if m.Checks() != 1 {
		t.Errorf("%d checks", m.Checks())
	}
}

func TestManagerUpdateIsAtomic(t *testing.T) {
	srv := newCounter(t)
	m := NewManager(Options{})
	good := Want{Owner: owner("good", srv.addr), Spec: fast(TypeTCP)}
	if err := m.Update([]Want{good}); err != nil {
		t.Fatal(err)
	}
	bad := Want{Owner: owner("bad", srv.addr), Spec: Spec{Type: TypeHTTP, ExpectBody: "("}}
	other := Want{Owner: owner("other", srv.addr), Spec: fast(TypeUDP)}
	err := m.Update([]Want{other, bad})
	if err == nil || !strings.Contains(err.Error(), "expect_body") {
		t.Fatalf("Update with a bad regex: %v", err)
	}
	st := m.Status()
	if len(st) != 1 || st[0].Owner != good.Owner {
		t.Errorf("a refused update changed the set: %+v", st)
	}
	if err := m.Update([]Want{good, good}); err == nil {
		t.Error("an owner listed twice was accepted")
	}
}

// fakeChecker passes after an optional pause, counting calls and the
// most that run at once.
type fakeChecker struct {
	pause   time.Duration
	mu      sync.Mutex
	first   []time.Time
	running atomic.Int64
	most    atomic.Int64
}

func (f *fakeChecker) factory(Spec, Target) (Checker, error) {
	return checkerFunc(func(ctx context.Context) Result {
		start := time.Now()
		n := f.running.Add(1)
		defer f.running.Add(-1)
		for {
			m := f.most.Load()
			if n <= m || f.most.CompareAndSwap(m, n) {
				break
			}
		}
		f.mu.Lock()
		f.first = append(f.first, start)
		f.mu.Unlock()
		select {
		case <-time.After(f.pause):
		case <-ctx.Done():
		}
		return Result{OK: true, Reason: "fake", Latency: time.Since(start), At: start}
	}), nil
}

type checkerFunc func(context.Context) Result

func (f checkerFunc) Check(ctx context.Context) Result { return f(ctx) }

func manyWants(n int, s Spec) []Want {
	out := make([]Want, n)
	for i := range out {
		out[i] = Want{Owner: owner("svc", netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 80)), Spec: s}
	}
	return out
}

func TestManagerJitter(t *testing.T) {
	f := &fakeChecker{}
	m := NewManager(Options{newChecker: f.factory})
	s := fast(TypeTCP)
	s.Interval = config.Duration(time.Second)
	const n = 200
	start := time.Now()
	if err := m.Update(manyWants(n, s)); err != nil {
		t.Fatal(err)
	}
	stop := runManager(t, m)
	time.Sleep(time.Second)
	stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	// Every check ran once in its first interval, spread over it: each
	// tenth of the second holds about 20 of the 200.
	var buckets [10]int
	for _, at := range f.first {
		i := int(at.Sub(start) / (100 * time.Millisecond))
		if i >= 0 && i < 10 {
			buckets[i]++
		}
	}
	if len(f.first) < n*9/10 || len(f.first) > n+n/10 {
		t.Errorf("%d checks ran in the first interval of %d checks", len(f.first), n)
	}
	for i, b := range buckets {
		if b < 5 || b > 45 {
			t.Errorf("first checks per 100 ms: %v (bucket %d holds %d; want about 20 each)", buckets, i, b)
			break
		}
	}
}

func TestManagerBoundedConcurrency(t *testing.T) {
	f := &fakeChecker{pause: 40 * time.Millisecond}
	m := NewManager(Options{newChecker: f.factory, MaxConcurrent: 3})
	if err := m.Update(manyWants(20, fast(TypeTCP))); err != nil {
		t.Fatal(err)
	}
	stop := runManager(t, m)
	time.Sleep(400 * time.Millisecond)
	stop()
	if most := f.most.Load(); most != 3 {
		t.Errorf("at most %d checks ran at once, want the bound of 3 reached and kept", most)
	}
}

func TestManagerSlowSinkDoesNotStopChecks(t *testing.T) {
	srv := newCounter(t)
	sink := &recorder{block: make(chan struct{})}
	m := NewManager(Options{Sink: sink})
	o := owner("web", srv.addr)
	if err := m.Update([]Want{{Owner: o, Spec: fast(TypeTCP)}}); err != nil {
		t.Fatal(err)
	}
	runManager(t, m)
	eventually(t, "the sink called", func() bool { return sink.entered.Load() == 1 })
	// The sink is stuck with the first batch. The server goes and comes
	// back: checks go on, and the owner's transitions merge while waiting.
	srv.stop()
	eventually(t, "down", func() bool { st, _ := statusOf(m, o); return st.State == StateDown })
	srv.restart()
	eventually(t, "up", func() bool { st, _ := statusOf(m, o); return st.State == StateUp })
	srv.stop()
	eventually(t, "down", func() bool { st, _ := statusOf(m, o); return st.State == StateDown })
	close(sink.block)
	time.Sleep(300 * time.Millisecond)
	if len(sink.all()) != 2 {
		t.Fatalf("delivered %+v", sink.all())
	}
	ts := sink.all()
	if ts[0].To != StateUp || ts[1].From != StateUp || ts[1].To != StateDown {
		t.Errorf("delivered %+v; want unknown->up, then the merged up->down", ts)
	}
}

func TestManagerMetrics(t *testing.T) {
	srv := newCounter(t)
	sink := &recorder{}
	m := NewManager(Options{Sink: sink})
	o := owner("web", srv.addr)
	dead := owner("web", netip.MustParseAddrPort("127.0.0.1:1"))
	if err := m.Update([]Want{{Owner: o, Spec: fast(TypeTCP)}, {Owner: dead, Spec: fast(TypeTCP)}}); err != nil {
		t.Fatal(err)
	}
	runManager(t, m)
	eventually(t, "both known", func() bool { l := sink.last(); return l[o] == StateUp && l[dead] == StateDown })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
	port := srv.addr.Port()
	want := `# HELP lvs_node_real_server_up 1 when the real server passes its health check, 0 when it is down or not yet known to be up.
# TYPE lvs_node_real_server_up gauge
lvs_node_real_server_up{local_address="192.0.2.1",local_port="80",remote_address="127.0.0.1",remote_port="1",service="web"} 0
lvs_node_real_server_up{local_address="192.0.2.1",local_port="80",remote_address="127.0.0.1",remote_port="` + strconv.Itoa(int(port)) + `",service="web"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "lvs_node_real_server_up"); err != nil {
		t.Error(err)
	}
	if n := testutil.ToFloat64(m.metrics.errors.WithLabelValues(TypeTCP, KindRefused)); n < 1 {
		t.Errorf("refused errors counted: %v", n)
	}
	if n, err := testutil.GatherAndCount(reg, "lvs_node_health_check_transitions_total"); err != nil || n != 4 {
		t.Errorf("transition series: %d %v", n, err)
	}
	if n, err := testutil.GatherAndCount(reg, "lvs_node_health_check_duration_seconds"); err != nil || n != 1 {
		t.Errorf("duration histograms: %d %v", n, err)
	}
}
