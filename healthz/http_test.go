package healthz

import (
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// webServer answers /ok 200 "ready", /down 503, /moved 301, /slow after a
// pause, /wrong 200 "starting", /reset with a TCP reset, and records the
// method and Host header of the last request.
type webServer struct {
	mu     sync.Mutex
	method string
	host   string
	pause  time.Duration
}

func (w *webServer) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	w.method, w.host = r.Method, r.Host
	w.mu.Unlock()
	switch r.URL.Path {
	case "/ok":
		fmt.Fprint(rw, "status: ready\n")
	case "/down":
		http.Error(rw, "maintenance", http.StatusServiceUnavailable)
	case "/moved":
		http.Redirect(rw, r, "/ok", http.StatusMovedPermanently)
	case "/slow":
		time.Sleep(w.pause)
		fmt.Fprint(rw, "late\n")
	case "/wrong":
		fmt.Fprint(rw, "status: starting\n")
	case "/reset":
		c, _, err := rw.(http.Hijacker).Hijack()
		if err == nil {
			reset(c)
		}
	default:
		http.NotFound(rw, r)
	}
}

func (w *webServer) last() (string, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.method, w.host
}

func serverAddr(t *testing.T, s *httptest.Server) netip.AddrPort {
	t.Helper()
	return s.Listener.Addr().(*net.TCPAddr).AddrPort()
}

func TestHTTP(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ws := &webServer{pause: 2 * timeout}
	srv := httptest.NewServer(ws)
	t.Cleanup(srv.Close)
	addr := serverAddr(t, srv)
	garbage := listen(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n")); c.Close() })
	hangup := listen(t, func(c net.Conn) { buf := make([]byte, 512); c.Read(buf); c.Close() })

	runCases(t, TypeHTTP, timeout, []checkCase{
		{"200", Spec{Path: "/ok"}, addr, true, "", "HTTP 200"},
		{"wrong status", Spec{Path: "/down"}, addr, false, KindStatus, "HTTP 503"},
		{"404", Spec{Path: "/nowhere"}, addr, false, KindStatus, "HTTP 404"},
		{"expected redirect", Spec{Path: "/moved", ExpectStatus: []int{301, 302}}, addr, true, "", "HTTP 301"},
		{"redirect not expected", Spec{Path: "/moved"}, addr, false, KindStatus, "HTTP 301"},
		{"body matches", Spec{Path: "/ok", ExpectBody: "status: (ready|ok)"}, addr, true, "", "HTTP 200, body matches"},
		{"wrong body", Spec{Path: "/wrong", ExpectBody: "status: (ready|ok)"}, addr, false, KindMismatch, "HTTP 200, body does not match"},
		{"slow", Spec{Path: "/slow"}, addr, false, KindTimeout, "timeout after 300ms"},
		{"reset", Spec{Path: "/reset"}, addr, false, KindReset, "connection reset by peer"},
		{"closed without reply", Spec{Path: "/"}, hangup, false, KindProtocol, "connection closed before an HTTP reply"},
		{"not HTTP", Spec{Path: "/"}, garbage, false, KindProtocol, "not an HTTP reply"},
		{"refused", Spec{Path: "/"}, closedPort(t, "tcp"), false, KindRefused, "connect: connection refused"},
	})
	t.Run("method and host", func(t *testing.T) {
		wantResult(t, runCheck(t, spec(Spec{Type: TypeHTTP, Path: "/ok", Method: "HEAD", Host: "www.example.com"}, timeout), addr), true, "", "HTTP 200")
		if m, h := ws.last(); m != "HEAD" || h != "www.example.com" {
			t.Errorf("server saw %s with Host %q", m, h)
		}
		wantResult(t, runCheck(t, spec(Spec{Type: TypeHTTP, Path: "/ok"}, timeout), addr), true, "", "HTTP 200")
		if _, h := ws.last(); h != addr.String() {
			t.Errorf("default Host %q, want %s", h, addr)
		}
	})
}

func TestHTTPS(t *testing.T) {
	const timeout = 500 * time.Millisecond
	srv := httptest.NewUnstartedServer(&webServer{})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes refused on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := serverAddr(t, srv)
	plain := httptest.NewServer(&webServer{})
	t.Cleanup(plain.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate()) // valid for example.com and 127.0.0.1
	yes := true

	// check builds the checker and trusts the test server's certificate
	// when trust is set (the system roots otherwise).
	check := func(t *testing.T, s Spec, addr netip.AddrPort, trust bool) Result {
		t.Helper()
		s.Type = TypeHTTPS
		s = spec(s, timeout)
		c, err := newHTTP(&s, addr)
		if err != nil {
			t.Fatal(err)
		}
		if trust {
			c.tls.RootCAs = roots
		}
		return runChecker(t, c, timeout)
	}
	t.Run("unverified", func(t *testing.T) {
		wantResult(t, check(t, Spec{Path: "/ok"}, addr, false), true, "", "HTTP 200")
	})
	t.Run("wrong status over TLS", func(t *testing.T) {
		wantResult(t, check(t, Spec{Path: "/down"}, addr, false), false, KindStatus, "HTTP 503")
	})
	t.Run("verified name", func(t *testing.T) {
		wantResult(t, check(t, Spec{Path: "/ok", TLSVerify: &yes, TLSServerName: "example.com"}, addr, true), true, "", "HTTP 200")
	})
	t.Run("verified address", func(t *testing.T) {
		wantResult(t, check(t, Spec{Path: "/ok", TLSVerify: &yes}, addr, true), true, "", "HTTP 200")
	})
	t.Run("bad certificate", func(t *testing.T) {
		wantResult(t, check(t, Spec{Path: "/ok", TLSVerify: &yes, TLSServerName: "example.com"}, addr, false), false, KindTLS, "certificate signed by unknown authority")
	})
	t.Run("wrong server name", func(t *testing.T) {
		wantResult(t, check(t, Spec{Path: "/ok", TLSVerify: &yes, TLSServerName: "www.other.test"}, addr, true), false, KindTLS, "not www.other.test")
	})
	t.Run("server name from host", func(t *testing.T) {
		wantResult(t, check(t, Spec{Path: "/ok", TLSVerify: &yes, Host: "www.other.test:443"}, addr, true), false, KindTLS, "not www.other.test")
	})
	t.Run("not TLS", func(t *testing.T) {
		wantResult(t, check(t, Spec{Path: "/ok"}, serverAddr(t, plain), false), false, KindTLS, "TLS: ")
	})
}
