package feedback

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
	"github.com/lvs-node/lvs-node/internal/kerneltest"
	"github.com/lvs-node/lvs-node/lab/topo"
	"github.com/lvs-node/lvs-node/rsagent"
)

// timedSink records updates with the time they arrived.
type timedSink struct {
	mu sync.Mutex
	us []timedUpdate
}

type timedUpdate struct {
	Update[string]
	at time.Time
}

func (s *timedSink) FeedbackChanged(_ context.Context, us []Update[string]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range us {
		s.us = append(s.us, timedUpdate{u, time.Now()})
	}
}

func (s *timedSink) last(key string) (timedUpdate, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.us) - 1; i >= 0; i-- {
		if s.us[i].Key == key {
			return s.us[i], true
		}
	}
	return timedUpdate{}, false
}

func (s *timedSink) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, u := range s.us {
		if u.Key == key {
			n++
		}
	}
	return n
}

// startAgent runs a real-server reporter (agent and file load source)
// inside h's network namespace; stop ends it (its port then refuses).
func startAgent(t *testing.T, h *topo.Host, capFile string) (rep *rsagent.Reporter, stop func()) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rs.yaml")
	body := `realserver:
  state_dir: ` + filepath.Join(dir, "state") + `
  vips: [{address: 10.0.0.100, mode: dr}]
  agent: {listen: "0.0.0.0:3262"}
  load:
    interval: 100ms
    sources:
      - {type: file, path: ` + capFile + `}
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := rsagent.LoadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = rsagent.NewReporter(c.Realserver, rsagent.ReportingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wait func()
	// The listener is made inside the namespace.
	if err := h.Do(func() error {
		var err error
		wait, err = rep.Start(ctx)
		return err
	}); err != nil {
		cancel()
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wait() }) }
	t.Cleanup(stop)
	return rep, stop
}

// TestFeedbackEndToEnd: real-server agents in their own network
// namespaces, the director's poller and controllers polling them from
// another. A load source going from 100% to 25% brings the weight to
// about 25% of the configured weight within 3 polls; drain brings the
// effective weight to 0 and ready back; a killed agent gives the
// configured weight back after stale_after; the other real server's
// weight never moves.
func TestFeedbackEndToEnd(t *testing.T) {
	kerneltest.NeedRoot(t)
	lab := topo.New(t)
	n := lab.Net("n", "10.211.0.0/24")
	director := lab.Host("dir", topo.On(n, "10.211.0.1/24"))
	rs1 := lab.Host("rs1", topo.On(n, "10.211.0.11/24"))
	rs2 := lab.Host("rs2", topo.On(n, "10.211.0.12/24"))
	tmp := t.TempDir()
	cap1, cap2 := filepath.Join(tmp, "cap1"), filepath.Join(tmp, "cap2")
	for _, f := range []string{cap1, cap2} {
		if err := os.WriteFile(f, []byte("100\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep1, stop1 := startAgent(t, rs1, cap1)
	startAgent(t, rs2, cap2)

	const interval = 300 * time.Millisecond
	const staleAfter = 1500 * time.Millisecond
	sp := spec(func(s *Spec) {
		s.Interval = Duration(interval)
		s.Timeout = Duration(200 * time.Millisecond)
		s.StaleAfter = Duration(staleAfter)
	})
	sink := &timedSink{}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dl, _ := ctx.Deadline()
		return director.Dial(network, addr, time.Until(dl))
	}
	p, err := NewPoller([]Target[string]{
		{Key: "rs1", Service: "web", Server: "10.211.0.11:80", Agent: netip.MustParseAddrPort("10.211.0.11:3262"), Weight: 200, Spec: sp},
		{Key: "rs2", Service: "web", Server: "10.211.0.12:80", Agent: netip.MustParseAddrPort("10.211.0.12:3262"), Weight: 200, Spec: sp},
	}, sink, Options{Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	run(t, p)
	// Both agents answer; nothing changes at 100%.
	waitFor(t, "first polls", func() bool { return rep1.Stats().Answered >= 2 })
	if sink.count("rs1")+sink.count("rs2") != 0 {
		t.Fatalf("updates at 100%%: %+v", sink.us)
	}

	polled := rep1.Stats().Answered
	if err := os.WriteFile(cap1, []byte("25\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "weight 50 (25% of 200)", func() bool { u, ok := sink.last("rs1"); return ok && u.Weight == 50 })
	if polls := rep1.Stats().Answered - polled; polls > 3 {
		t.Errorf("25%% reached after %d polls, want at most 3", polls)
	}

	if err := rep1.Admin().Set(agentcheck.AdminDrain); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drain", func() bool { u, _ := sink.last("rs1"); return u.Admin == agentcheck.AdminDrain })
	if u, _ := sink.last("rs1"); u.Effective() != 0 || u.Weight != 50 {
		t.Errorf("drained: %+v, want effective weight 0 and the feedback weight kept", u.Decision)
	}
	if err := rep1.Admin().Set(agentcheck.AdminReady); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { u, _ := sink.last("rs1"); return u.Admin == agentcheck.AdminReady })
	if u, _ := sink.last("rs1"); u.Effective() != 50 {
		t.Errorf("ready again: %+v", u.Decision)
	}

	stop1()
	killed := time.Now()
	waitFor(t, "configured weight after stale_after", func() bool { u, _ := sink.last("rs1"); return u.Stale })
	u, _ := sink.last("rs1")
	if u.Weight != 200 || u.Effective() != 200 {
		t.Errorf("stale: %+v, want the configured weight 200", u.Decision)
	}
	if d := u.at.Sub(killed); d < staleAfter-interval || d > staleAfter+3*interval {
		t.Errorf("configured weight %s after the agent stopped, want about stale_after (%s)", d, staleAfter)
	}
	if n := sink.count("rs2"); n != 0 {
		t.Errorf("the other real server's weight moved %d times", n)
	}
}
