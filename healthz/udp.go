package healthz

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// udpChecker sends payload (possibly empty) in one datagram. With expect,
// a reply containing expect must arrive within the timeout. Without it,
// any reply passes, and so does silence until the timeout; an ICMP port
// unreachable (seen as a refused read on the connected socket) fails
// either way.
type udpChecker struct {
	addr    string
	timeout time.Duration
	payload []byte
	expect  []byte
	dialer  net.Dialer
}

func newUDP(s *Spec, addr netip.AddrPort) *udpChecker {
	c := &udpChecker{addr: addr.String(), timeout: s.Timeout.D(), payload: []byte(s.Payload)}
	if s.Expect != "" {
		c.expect = []byte(s.Expect)
	}
	return c
}

func (c *udpChecker) Check(ctx context.Context) Result {
	start := time.Now()
	conn, err := c.dialer.DialContext(ctx, "udp", c.addr)
	if err != nil {
		return failErr(ctx, start, c.timeout, err)
	}
	defer conn.Close()
	defer bindConn(ctx, conn)()
	if _, err := conn.Write(c.payload); err != nil {
		return c.failed(ctx, start, err)
	}
	buf := make([]byte, maxReply)
	n, err := conn.Read(buf)
	switch {
	case err == nil && c.expect != nil && !bytes.Contains(buf[:n], c.expect):
		return fail(start, KindMismatch, "reply %q does not contain %q", clip(string(buf[:n]), 40), clip(string(c.expect), 40))
	case err == nil:
		return passf(start, "reply of %d bytes", n)
	case c.expect == nil && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != context.Canceled:
		return passf(start, "no reply and no ICMP error within %s", c.timeout)
	case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != context.Canceled:
		return fail(start, KindTimeout, "no reply within %s", c.timeout)
	}
	return c.failed(ctx, start, err)
}

func (c *udpChecker) failed(ctx context.Context, start time.Time, err error) Result {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fail(start, KindRefused, "ICMP port unreachable")
	}
	return failErr(ctx, start, c.timeout, err)
}
