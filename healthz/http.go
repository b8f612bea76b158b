package healthz

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// maxBody bounds the body an http check reads to match expect_body.
const maxBody = 1 << 20

// httpChecker sends one HTTP/1.1 request on a new connection (with
// "Connection: close") and reads the answer with net/http's parser: the
// status must be one of expect_status (any 2xx when unset) and, with
// expect_body, the body must match the regular expression. https adds a
// TLS handshake, verified only with tls_verify.
type httpChecker struct {
	addr    netip.AddrPort
	timeout time.Duration
	method  string
	req     []byte
	expect  []int
	body    *regexp.Regexp
	tls     *tls.Config // nil for http
}

func newHTTP(s *Spec, addr netip.AddrPort) (*httpChecker, error) {
	c := &httpChecker{addr: addr, timeout: s.Timeout.D(), method: strings.ToUpper(s.Method), expect: s.ExpectStatus}
	if s.ExpectBody != "" {
		re, err := regexp.Compile(s.ExpectBody)
		if err != nil {
			return nil, fmt.Errorf("expect_body: %w", err)
		}
		c.body = re
	}
	host := s.Host
	if host == "" {
		host = addr.String()
		if p := addr.Port(); s.Type == TypeHTTP && p == 80 || s.Type == TypeHTTPS && p == 443 {
			host = addrHost(addr.Addr())
		}
	}
	c.req = fmt.Appendf(nil, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: lvs-node-healthcheck\r\nAccept: */*\r\nConnection: close\r\n\r\n",
		c.method, s.Path, host)
	if s.Type == TypeHTTPS {
		name := s.TLSServerName
		if name == "" && s.Host != "" {
			name = s.Host
			if h, _, err := net.SplitHostPort(s.Host); err == nil {
				name = h
			}
		}
		if name == "" {
			name = addr.Addr().String()
		}
		c.tls = &tls.Config{ServerName: name, InsecureSkipVerify: !s.Verify(), MinVersion: tls.VersionTLS12}
	}
	return c, nil
}

// addrHost writes an address as the host part of a Host header.
func addrHost(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

func (c *httpChecker) Check(ctx context.Context) Result {
	start := time.Now()
	raw, err := dialTCP(ctx, c.addr)
	if err != nil {
		return failErr(ctx, start, c.timeout, err)
	}
	var conn net.Conn = raw
	defer raw.abort()
	defer bindConn(ctx, raw)()
	if c.tls != nil {
		tc := tls.Client(raw, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return failErr(ctx, start, c.timeout, err)
		}
		conn = tc
	}
	if _, err := conn.Write(c.req); err != nil {
		return failErr(ctx, start, c.timeout, err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), &http.Request{Method: c.method})
	if err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return fail(start, KindProtocol, "connection closed before an HTTP reply")
		}
		if strings.HasPrefix(err.Error(), "malformed HTTP") {
			return fail(start, KindProtocol, "not an HTTP reply")
		}
		return failErr(ctx, start, c.timeout, err)
	}
	defer resp.Body.Close()
	if !c.statusOK(resp.StatusCode) {
		return fail(start, KindStatus, "HTTP %d", resp.StatusCode)
	}
	if c.body == nil {
		return passf(start, "HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return failErr(ctx, start, c.timeout, err)
	}
	if !c.body.Match(body) {
		return fail(start, KindMismatch, "HTTP %d, body does not match %q", resp.StatusCode, clip(c.body.String(), 40))
	}
	return passf(start, "HTTP %d, body matches", resp.StatusCode)
}

func (c *httpChecker) statusOK(code int) bool {
	if len(c.expect) == 0 {
		return code >= 200 && code < 300
	}
	return slices.Contains(c.expect, code)
}
