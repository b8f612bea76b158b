package healthz

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/config"
)

// slack is what a check may take beyond its timeout.
const slack = 300 * time.Millisecond

// spec returns s with the given timeout and its defaults.
func spec(s Spec, timeout time.Duration) Spec {
	s.Timeout = config.Duration(timeout)
	s.Interval = config.Duration(2 * timeout)
	return s.WithDefaults()
}

// runCheck builds the checker of s for addr and runs it once, bounded by
// the spec's timeout, as the manager does.
func runCheck(t *testing.T, s Spec, addr netip.AddrPort) Result {
	t.Helper()
	c, err := New(s, Target{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	return runChecker(t, c, s.Timeout.D())
}

func runChecker(t *testing.T, c Checker, timeout time.Duration) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	r := c.Check(ctx)
	if took := time.Since(start); took > timeout+slack {
		t.Errorf("check took %s with a timeout of %s", took, timeout)
	}
	return r
}

// wantResult checks the outcome, the kind of failure and the reason.
func wantResult(t *testing.T, r Result, ok bool, kind, reason string) {
	t.Helper()
	if r.OK != ok || r.Kind != kind || !strings.Contains(r.Reason, reason) {
		t.Errorf("result %+v, want ok=%v kind=%q reason containing %q", r, ok, kind, reason)
	}
	if r.Latency <= 0 || r.At.IsZero() {
		t.Errorf("result without latency or start: %+v", r)
	}
}

// checkCase is one row of a checker's table test.
type checkCase struct {
	name   string
	s      Spec
	addr   netip.AddrPort
	ok     bool
	kind   string
	reason string
}

// runCases runs the check of each case (of type typ where the case names
// none) with timeout.
func runCases(t *testing.T, typ string, timeout time.Duration, cases []checkCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.s.Type == "" {
				c.s.Type = typ
			}
			wantResult(t, runCheck(t, spec(c.s, timeout), c.addr), c.ok, c.kind, c.reason)
		})
	}
}

// listen opens a TCP listener on the loopback and serves each connection
// with serve until the test ends.
func listen(t *testing.T, serve func(net.Conn)) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// closedPort returns a loopback TCP port nothing listens on.
func closedPort(t *testing.T, network string) netip.AddrPort {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// reset closes c with a TCP reset.
func reset(c net.Conn) {
	_ = c.(*net.TCPConn).SetLinger(0)
	_ = c.Close()
}

func TestTargetOf(t *testing.T) {
	real := netip.MustParseAddrPort("10.0.0.1:80")
	for _, c := range []struct {
		s    Spec
		want string
	}{
		{Spec{Type: TypeTCP}, "10.0.0.1:80"},
		{Spec{Type: TypeTCP, Port: 8080}, "10.0.0.1:8080"},
		{Spec{Type: TypeHTTP, Address: "10.0.9.1"}, "10.0.9.1:80"},
		{Spec{Type: TypeICMP, Port: 8080}, "10.0.0.1:0"},
		{Spec{Type: TypeExec, Address: "10.0.9.1", Port: 9}, "10.0.9.1:9"},
	} {
		if got := TargetOf(&c.s, real).String(); got != c.want {
			t.Errorf("TargetOf(%+v) = %s, want %s", c.s, got, c.want)
		}
	}
	if _, err := New(Spec{Type: TypeTCP}, Target{Addr: netip.MustParseAddrPort("10.0.0.1:0")}); err == nil {
		t.Error("a tcp check without a port was built")
	}
}
