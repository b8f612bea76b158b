package feedback

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// testAgent is an agent-check listener on 127.0.0.1 that answers reply.
type testAgent struct {
	ln    net.Listener
	reply atomic.Value // string
	token string
	hang  bool
	conns atomic.Int64
	lines chan string // the token lines received
}

func hanging(a *testAgent) { a.hang = true }

func withToken(tok string) func(*testAgent) { return func(a *testAgent) { a.token = tok } }

func newTestAgent(t *testing.T, reply string, opts ...func(*testAgent)) *testAgent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &testAgent{ln: ln, lines: make(chan string, 100)}
	a.reply.Store(reply)
	for _, o := range opts {
		o(a)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.conns.Add(1)
			go a.serve(c)
		}
	}()
	return a
}

func (a *testAgent) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if a.hang {
		_, _ = c.Read(make([]byte, 1)) // until the poller gives up
		return
	}
	if a.token != "" {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		select {
		case a.lines <- line:
		default:
		}
		if strings.TrimSpace(line) != a.token {
			return
		}
	}
	_, _ = c.Write([]byte(a.reply.Load().(string)))
}

func (a *testAgent) addr() netip.AddrPort { return netip.MustParseAddrPort(a.ln.Addr().String()) }

// recSink records every update.
type recSink struct {
	mu      sync.Mutex
	updates []Update[string]
	batches int
}

func (s *recSink) FeedbackChanged(_ context.Context, us []Update[string]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches++
	s.updates = append(s.updates, us...)
}

func (s *recSink) of(key string) []Update[string] {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Update[string]
	for _, u := range s.updates {
		if u.Key == key {
			out = append(out, u)
		}
	}
	return out
}

func fastSpec(mod func(*Spec)) Spec {
	return spec(func(s *Spec) {
		s.Interval = Duration(100 * time.Millisecond)
		s.Timeout = Duration(80 * time.Millisecond)
		s.StaleAfter = Duration(400 * time.Millisecond)
		if mod != nil {
			mod(s)
		}
	})
}

func run(t *testing.T, p *Poller[string]) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPollerFollowsTheAgentAndLeavesOthersAlone(t *testing.T) {
	busy := newTestAgent(t, "up ready 25%\n")
	idle := newTestAgent(t, "up ready 100%\n")
	sink := &recSink{}
	p, err := NewPoller([]Target[string]{
		{Key: "busy", Service: "web", Server: "busy", Agent: busy.addr(), Weight: 100, Spec: fastSpec(nil)},
		{Key: "idle", Service: "web", Server: "idle", Agent: idle.addr(), Weight: 100, Spec: fastSpec(nil)},
	}, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, p)
	waitFor(t, "weight 25", func() bool {
		us := sink.of("busy")
		return len(us) > 0 && us[len(us)-1].Weight == 25
	})
	if us := sink.of("busy"); len(us) != 2 || us[0].Weight != 63 {
		t.Errorf("busy: %+v, want 63 then 25", us)
	}
	busy.reply.Store("up drain 25%\n")
	waitFor(t, "drain", func() bool {
		us := sink.of("busy")
		return us[len(us)-1].Admin == agentcheck.AdminDrain
	})
	if us := sink.of("idle"); len(us) != 0 {
		t.Errorf("idle agent at 100%% caused updates: %+v", us)
	}
}

func TestSlowAgentsDoNotDelayOthers(t *testing.T) {
	fast := newTestAgent(t, "50%\n")
	targets := []Target[string]{{Key: "fast", Server: "fast", Agent: fast.addr(), Weight: 100, Spec: fastSpec(nil)}}
	for i := range 3 {
		slow := newTestAgent(t, "", hanging)
		targets = append(targets, Target[string]{Key: "slow" + string(rune('a'+i)), Server: "slow" + string(rune('a'+i)), Agent: slow.addr(), Weight: 100, Spec: fastSpec(nil)})
	}
	p, err := NewPoller(targets, &recSink{}, Options{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	run(t, p)
	time.Sleep(time.Second)
	// The fast agent is polled on its own schedule (about 10 times a
	// second) while every slow one times out.
	if n := fast.conns.Load(); n < 8 {
		t.Errorf("fast agent polled %d times in 1s, want about 10", n)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	timeouts := 0.0
	for _, mf := range mfs {
		if mf.GetName() != MetricErrors {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == ErrKindTimeout {
					timeouts += m.GetCounter().GetValue()
				}
			}
		}
	}
	if timeouts < 15 {
		t.Errorf("%v timeouts counted for 3 hanging agents in 1s, want about 30", timeouts)
	}
}

func TestPollErrorKinds(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := netip.MustParseAddrPort(closed.Addr().String())
	closed.Close()
	hang := newTestAgent(t, "", hanging)
	cases := []struct {
		addr netip.AddrPort
		kind string
	}{
		{closedAddr, ErrKindConnect},
		{newTestAgent(t, "up 50% bogus\n").addr(), ErrKindMalformed},
		{newTestAgent(t, "up 50%").addr(), ErrKindIncomplete},
		{newTestAgent(t, strings.Repeat("x", 5000)).addr(), ErrKindTooLong},
		{hang.addr(), ErrKindTimeout},
	}
	for _, c := range cases {
		_, err := Poll(context.Background(), c.addr, "", 200*time.Millisecond)
		var pe *PollError
		if !errors.As(err, &pe) || pe.Kind != c.kind {
			t.Errorf("%s: err %v, want kind %s", c.kind, err, c.kind)
		}
	}
	r, err := Poll(context.Background(), newTestAgent(t, "up 50%\r\n").addr(), "", time.Second)
	if err != nil || r.Weight != 50 {
		t.Errorf("good reply: %+v %v", r, err)
	}
}

func TestTokenIsSentFirst(t *testing.T) {
	a := newTestAgent(t, "up 40%\n", withToken("s3cret"))
	dir := t.TempDir()
	tf := filepath.Join(dir, "token")
	if err := os.WriteFile(tf, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err := Poll(context.Background(), a.addr(), "s3cret", time.Second); err != nil || r.Weight != 40 {
		t.Fatalf("with token: %+v %v", r, err)
	}
	if got := <-a.lines; got != "s3cret\n" {
		t.Errorf("agent received %q", got)
	}
	// The wrong token: the agent closes without answering.
	_, err := Poll(context.Background(), a.addr(), "wrong", time.Second)
	var pe *PollError
	if !errors.As(err, &pe) || pe.Kind != ErrKindIncomplete {
		t.Errorf("wrong token: %v", err)
	}
	// Through the poller, from token_file.
	sink := &recSink{}
	p, err := NewPoller([]Target[string]{{Key: "a", Agent: a.addr(), Weight: 100, Spec: fastSpec(func(s *Spec) { s.TokenFile = tf })}}, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, p)
	waitFor(t, "weight 40", func() bool { us := sink.of("a"); return len(us) > 0 && us[len(us)-1].Weight == 40 })
	if _, err := NewPoller([]Target[string]{{Key: "a", Agent: a.addr(), Weight: 100, Spec: fastSpec(func(s *Spec) { s.TokenFile = filepath.Join(dir, "missing") })}}, sink, Options{}); err == nil {
		t.Error("a missing token file was accepted")
	}
}

func TestLostAgentReturnsToConfiguredWeight(t *testing.T) {
	a := newTestAgent(t, "up 25%\n")
	sink := &recSink{}
	p, err := NewPoller([]Target[string]{{Key: "a", Agent: a.addr(), Weight: 80, Spec: fastSpec(nil)}}, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, p)
	waitFor(t, "weight 20", func() bool { us := sink.of("a"); return len(us) > 0 && us[len(us)-1].Weight == 20 })
	a.ln.Close()
	lost := time.Now()
	waitFor(t, "configured weight", func() bool { us := sink.of("a"); return us[len(us)-1].Weight == 80 })
	us := sink.of("a")
	last := us[len(us)-1]
	if !last.Stale || !strings.Contains(last.Reason, "stale") {
		t.Errorf("last update %+v, want stale", last)
	}
	if d := time.Since(lost); d < 300*time.Millisecond {
		t.Errorf("configured weight after %s, before stale_after", d)
	}
	for _, u := range us {
		if u.Weight == 0 {
			t.Errorf("weight 0 delivered: %+v", u)
		}
	}
}

func TestSharedAgentIsPolledOnce(t *testing.T) {
	a := newTestAgent(t, "up 50%\n")
	sink := &recSink{}
	p, err := NewPoller([]Target[string]{
		{Key: "web", Service: "web", Agent: a.addr(), Weight: 100, Spec: fastSpec(nil)},
		{Key: "api", Service: "api", Agent: a.addr(), Weight: 10, Spec: fastSpec(nil)},
	}, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, p)
	waitFor(t, "both at 50%", func() bool {
		w, a := sink.of("web"), sink.of("api")
		return len(w) > 0 && w[len(w)-1].Weight == 50 && len(a) > 0 && a[len(a)-1].Weight == 5
	})
	time.Sleep(500 * time.Millisecond)
	if got := testutil.CollectAndCount(p.Collector(), MetricPolls); got != 1 {
		t.Errorf("%d agents polled, want 1", got)
	}
	if n := a.conns.Load(); n > 15 {
		t.Errorf("%d connections in about 1s at 100ms for two services, want one poll per interval", n)
	}
}

func TestSetTargetsKeepsUnchangedState(t *testing.T) {
	a := newTestAgent(t, "up 25%\n")
	b := newTestAgent(t, "up 25%\n")
	sink := &recSink{}
	ta := Target[string]{Key: "a", Agent: a.addr(), Weight: 100, Spec: fastSpec(nil)}
	tb := Target[string]{Key: "b", Agent: b.addr(), Weight: 100, Spec: fastSpec(nil)}
	p := runPoller(t, sink, ta, tb)
	waitFor(t, "both at 25", func() bool {
		x, y := sink.of("a"), sink.of("b")
		return len(x) > 1 && x[len(x)-1].Weight == 25 && len(y) > 1 && y[len(y)-1].Weight == 25
	})
	tb.Weight = 200 // b changes; a does not
	if err := p.SetTargets(context.Background(), []Target[string]{ta, tb}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b at 50", func() bool { y := sink.of("b"); return y[len(y)-1].Weight == 50 })
	for _, d := range p.Decisions() {
		if d.Key == "a" && d.Weight != 25 {
			t.Errorf("a restarted: %+v", d)
		}
	}
	if n := len(sink.of("a")); n != 2 {
		t.Errorf("a got %d updates, want 2 (none after SetTargets)", n)
	}
}
