package agentserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lvs-node/lvs-node/director/feedback"
	"github.com/lvs-node/lvs-node/internal/agentcheck"
	"github.com/lvs-node/lvs-node/rsagent/load"
)

func f(v float64) *float64 { return &v }

func TestReply(t *testing.T) {
	cases := []struct {
		r    Report
		want string
	}{
		{Report{}, "up ready 100%"},
		{Report{Capacity: f(62.4), Admin: agentcheck.AdminReady}, "up ready 62%"},
		{Report{Capacity: f(0), Admin: agentcheck.AdminDrain}, "up drain 0%"},
		{Report{Capacity: f(40), Admin: agentcheck.AdminMaint, Health: agentcheck.HealthDown}, "down maint 40%"},
		{Report{Capacity: f(40), Health: agentcheck.HealthUp}, "up ready 40%"},
	}
	for _, c := range cases {
		if got := Reply(c.r).String(); got != c.want {
			t.Errorf("Reply(%+v) = %q, want %q", c.r, got, c.want)
		}
	}
}

// report is a Report that tests change.
type report struct {
	mu sync.Mutex
	r  Report
}

func (p *report) get() Report  { p.mu.Lock(); defer p.mu.Unlock(); return p.r }
func (p *report) set(r Report) { p.mu.Lock(); defer p.mu.Unlock(); p.r = r }

func start(t *testing.T, opts Options) (*Server, netip.AddrPort) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, netip.MustParseAddrPort(ln.Addr().String())
}

func TestServeAnswersTheAgentCheck(t *testing.T) {
	rep := &report{r: Report{Capacity: f(75), Admin: agentcheck.AdminReady}}
	s, addr := start(t, Options{Report: rep.get})
	r, err := feedback.Poll(context.Background(), addr, "", time.Second)
	if err != nil || r.String() != "up ready 75%" {
		t.Fatalf("poll: %q %v", r.String(), err)
	}
	rep.set(Report{Capacity: f(75), Admin: agentcheck.AdminDrain})
	// A poller that sends something first (agent-send) still gets the
	// reply, and the line is exactly one LF-ended line.
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "hello from haproxy\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	all, err := io.ReadAll(c)
	if err != nil || string(all) != "up drain 75%\n" {
		t.Fatalf("raw reply %q, %v", all, err)
	}
	if st := settled(s, func(st Stats) bool { return st.Answered == 2 }); st.Answered != 2 {
		t.Errorf("stats %+v", st)
	}
}

// settled returns s's stats once ok holds, or after 5 s: a handler counts
// its answer after the poller may have read it.
func settled(s *Server, ok func(Stats) bool) Stats {
	deadline := time.Now().Add(5 * time.Second)
	for !ok(s.Stats()) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return s.Stats()
}

func TestToken(t *testing.T) {
	rep := &report{r: Report{Capacity: f(30)}}
	s, addr := start(t, Options{Report: rep.get, Token: "s3cret", ReadTimeout: 300 * time.Millisecond})
	if r, err := feedback.Poll(context.Background(), addr, "s3cret", time.Second); err != nil || r.Weight != 30 {
		t.Fatalf("right token: %+v %v", r, err)
	}
	for _, bad := range []string{"wrong", "s3cre", "s3cret2", ""} {
		_, err := feedback.Poll(context.Background(), addr, bad, time.Second)
		var pe *feedback.PollError
		if !errors.As(err, &pe) || (pe.Kind != feedback.ErrKindIncomplete && pe.Kind != feedback.ErrKindTimeout) {
			t.Errorf("token %q: %v, want no reply", bad, err)
		}
	}
	// CRLF after the token is fine (agent-send "s3cret\r\n").
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "s3cret\r\n")
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	all, _ := io.ReadAll(c)
	c.Close()
	if string(all) != "up ready 30%\n" {
		t.Errorf("CRLF token: %q", all)
	}
	if st := settled(s, func(st Stats) bool { return st.Answered == 2 && st.Refused == 4 }); st.Answered != 2 || st.Refused != 4 {
		t.Errorf("stats %+v, want 2 answered and 4 refused", st)
	}
	if _, err := New(Options{Report: rep.get, Token: "a\nb"}); err == nil {
		t.Error("a two-line token was accepted")
	}
}

func TestTooManyConnections(t *testing.T) {
	rep := &report{}
	s, addr := start(t, Options{Report: rep.get, Token: "t", MaxConns: 2, ReadTimeout: 2 * time.Second})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond)
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(time.Second))
	n, _ := c.Read(make([]byte, 10))
	c.Close()
	if n != 0 || s.Stats().Busy != 1 {
		t.Errorf("third connection read %d bytes, stats %+v", n, s.Stats())
	}
	for _, c := range held {
		c.Close()
	}
}

func TestHTTP(t *testing.T) {
	v := 40.0
	rep := &report{r: Report{Capacity: f(40), Admin: agentcheck.AdminDrain, Combine: load.CombineMin, Time: time.Unix(1700000000, 0).UTC(),
		Sources: []load.SourceState{{Name: "psi", Type: "psi", Capacity: &v, Reads: 3}, {Name: "file", Type: "file", Error: "file: missing", Errors: 3, Reads: 3}}}}
	s, err := New(Options{Report: rep.get})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	var d Details
	err = json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || d.Reply != "up drain 40%" || d.Admin != "drain" || *d.Capacity != 40 ||
		len(d.Sources) != 2 || d.Sources[1].Error != "file: missing" || !d.Time.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("GET: %d %+v %v", resp.StatusCode, d, err)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, srv.URL+"/", strings.NewReader("drain"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d", m, resp.StatusCode)
		}
	}
	if rep.get().Admin != agentcheck.AdminDrain {
		t.Error("state changed over HTTP")
	}

	ts, _ := New(Options{Report: rep.get, Token: "s3cret"})
	tsrv := httptest.NewServer(ts.Handler())
	defer tsrv.Close()
	for tok, want := range map[string]int{"": 401, "Bearer nope": 401, "Bearer s3cret": 200} {
		req, _ := http.NewRequest(http.MethodGet, tsrv.URL+"/", nil)
		if tok != "" {
			req.Header.Set("Authorization", tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Authorization %q: %d, want %d", tok, resp.StatusCode, want)
		}
	}
}

func TestCollector(t *testing.T) {
	v := 40.0
	rep := &report{r: Report{Capacity: f(40), Sources: []load.SourceState{{Name: "psi", Type: "psi", Capacity: &v, Reads: 2, Timeouts: 1}}}}
	s, _ := New(Options{Report: rep.get})
	if problems, err := testutil.CollectAndLint(s.Collector()); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	want := `
# HELP lvs_node_realserver_capacity_ratio Combined capacity of the load sources, 0 to 1 (absent while no source gives one).
# TYPE lvs_node_realserver_capacity_ratio gauge
lvs_node_realserver_capacity_ratio 0.4
# HELP lvs_node_realserver_load_source_errors_total Readings skipped because the source failed (kind error) or did not answer in time (kind timeout).
# TYPE lvs_node_realserver_load_source_errors_total counter
lvs_node_realserver_load_source_errors_total{kind="error",source="psi",type="psi"} 0
lvs_node_realserver_load_source_errors_total{kind="timeout",source="psi",type="psi"} 1
`
	if err := testutil.CollectAndCompare(s.Collector(), strings.NewReader(want), MetricCapacity, MetricSourceErrors); err != nil {
		t.Error(err)
	}
}
