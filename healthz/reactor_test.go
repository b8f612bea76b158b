package healthz

import (
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/config"
)

// TestEventLoopChecks runs plain tcp and status-only http checks through
// the manager's event loop against misbehaving servers, and an http check
// with expect_body (a worker's) beside them.
func TestEventLoopChecks(t *testing.T) {
	ws := &webServer{pause: time.Second}
	srv := httptest.NewServer(ws)
	t.Cleanup(srv.Close)
	web := serverAddr(t, srv)
	garbage := listen(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n")); c.Close() })
	hangup := listen(t, func(c net.Conn) { buf := make([]byte, 512); c.Read(buf); c.Close() })
	resets := listen(t, func(c net.Conn) { buf := make([]byte, 512); c.Read(buf); reset(c) })
	open := listen(t, func(c net.Conn) { c.Close() })
	refused := closedPort(t, "tcp")

	for _, c := range []checkCase{
		{"tcp", Spec{Type: TypeTCP}, open, true, "", "connected"},
		{"tcp refused", Spec{Type: TypeTCP}, refused, false, KindRefused, "connect: connection refused"},
		{"http 200", Spec{Type: TypeHTTP, Path: "/ok"}, web, true, "", "HTTP 200"},
		{"http 503", Spec{Type: TypeHTTP, Path: "/down"}, web, false, KindStatus, "HTTP 503"},
		{"http expected 301", Spec{Type: TypeHTTP, Path: "/moved", ExpectStatus: []int{301}}, web, true, "", "HTTP 301"},
		{"http slow", Spec{Type: TypeHTTP, Path: "/slow"}, web, false, KindTimeout, "timeout after 300ms"},
		{"http closed", Spec{Type: TypeHTTP}, hangup, false, KindProtocol, "connection closed before an HTTP reply"},
		{"http not HTTP", Spec{Type: TypeHTTP}, garbage, false, KindProtocol, "not an HTTP reply"},
		{"http reset", Spec{Type: TypeHTTP}, resets, false, KindReset, "read: connection reset by peer"},
		{"http refused", Spec{Type: TypeHTTP}, refused, false, KindRefused, "connect: connection refused"},
		{"http body (worker)", Spec{Type: TypeHTTP, Path: "/wrong", ExpectBody: "ready"}, web, false, KindMismatch, "body does not match"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := NewManager(Options{rand: func(int64) int64 { return 0 }})
			c.s.Interval, c.s.Timeout = 0, 0
			s := spec(c.s, 300*time.Millisecond)
			s.Interval = s.Timeout * 10 // one check in the test's time
			o := owner("svc", c.addr)
			if err := m.Update([]Want{{Owner: o, Spec: s}}); err != nil {
				t.Fatal(err)
			}
			if c.name != "http body (worker)" && m.probes[m.owners[o].probe.key].rc == nil {
				t.Fatal("the check is not run by the event loop")
			}
			stop := runManager(t, m)
			var st Status
			eventually(t, "a check", func() bool { st, _ = statusOf(m, o); return st.Checks > 0 })
			stop()
			wantResult(t, st.Last, c.ok, c.kind, c.reason)
			if st.Last.Latency > 300*time.Millisecond+minTick+slack {
				t.Errorf("latency %s with a timeout of 300ms", st.Last.Latency)
			}
		})
	}
}

func TestStatusCode(t *testing.T) {
	for line, want := range map[string]int{
		"HTTP/1.1 200 OK\r": 200, "HTTP/1.0 503 Service Unavailable": 503, "HTTP/1.1 204": 204,
		"HTTP/1.1 20 OK": 0, "HTTP/2 200 OK": 0, "SSH-2.0-OpenSSH": 0, "HTTP/1.1 2000 OK": 0, "": 0,
	} {
		got, err := statusCode([]byte(line))
		if want == 0 && err == nil || want != 0 && got != want {
			t.Errorf("statusCode(%q) = %d, %v; want %d", line, got, err, want)
		}
	}
}

// TestEventLoopReusesSockets: checks of several kinds and outcomes run
// side by side, again and again, on the event loop's spare sockets: every
// result is the one its target gives (an event left over from a socket's
// previous check decides nothing), and far fewer sockets are made than
// checks run.
func TestEventLoopReusesSockets(t *testing.T) {
	ws := &webServer{pause: time.Second}
	srv := httptest.NewServer(ws)
	t.Cleanup(srv.Close)
	web := serverAddr(t, srv)
	resets := listen(t, func(c net.Conn) { buf := make([]byte, 512); c.Read(buf); reset(c) })
	open := listen(t, func(c net.Conn) { c.Close() })
	refused := closedPort(t, "tcp")
	cases := []checkCase{
		{"tcp", Spec{Type: TypeTCP}, open, true, "", "connected"},
		{"tcp refused", Spec{Type: TypeTCP}, refused, false, KindRefused, "connect: connection refused"},
		{"http 200", Spec{Type: TypeHTTP, Path: "/ok"}, web, true, "", "HTTP 200"},
		{"http 503", Spec{Type: TypeHTTP, Path: "/down"}, web, false, KindStatus, "HTTP 503"},
		{"http slow", Spec{Type: TypeHTTP, Path: "/slow"}, web, false, KindTimeout, "timeout after 60ms"},
		{"http reset", Spec{Type: TypeHTTP}, resets, false, KindReset, "read: connection reset by peer"},
		{"http refused", Spec{Type: TypeHTTP}, refused, false, KindRefused, "connect: connection refused"},
	}
	m := NewManager(Options{})
	var wants []Want
	for _, c := range cases {
		s := spec(c.s, 60*time.Millisecond)
		s.Interval = config.Duration(100 * time.Millisecond)
		wants = append(wants, Want{Owner: owner(c.name, c.addr), Spec: s})
	}
	if err := m.Update(wants); err != nil {
		t.Fatal(err)
	}
	stop := runManager(t, m)
	var made int64
	eventually(t, "ten checks of each", func() bool {
		if l := m.loop.Load(); l != nil {
			made = l.made.Load()
		}
		for _, w := range wants {
			if st, _ := statusOf(m, w.Owner); st.Checks < 10 {
				return false
			}
		}
		return true
	})
	stop()
	checks := uint64(0)
	for i, c := range cases {
		st, _ := statusOf(m, wants[i].Owner)
		checks += st.Checks
		for _, r := range st.History {
			if r.OK != c.ok || r.Kind != c.kind || r.Reason != c.reason {
				t.Errorf("%s: a check gave %+v", c.name, r)
			}
		}
	}
	if made == 0 || made*3 > int64(checks) {
		t.Errorf("%d sockets made for %d checks", made, checks)
	}
	t.Logf("%d sockets made for %d checks", made, checks)
}
