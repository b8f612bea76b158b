package healthz

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"
)

// maxReply bounds what a tcp or udp check reads while looking for its
// expected reply.
const maxReply = 64 << 10

// tcpChecker connects; with send it writes send, with expect it reads
// until expect appears. A plain connect check closes with a reset, as
// load balancers' checks usually do, so that neither side keeps a
// TIME_WAIT entry per check.
type tcpChecker struct {
	addr    netip.AddrPort
	timeout time.Duration
	send    []byte
	expect  []byte
}

func newTCP(s *Spec, addr netip.AddrPort) *tcpChecker {
	c := &tcpChecker{addr: addr, timeout: s.Timeout.D()}
	if s.Send != "" {
		c.send = []byte(s.Send)
	}
	if s.Expect != "" {
		c.expect = []byte(s.Expect)
	}
	return c
}

func (c *tcpChecker) Check(ctx context.Context) Result {
	start := time.Now()
	if c.send == nil && c.expect == nil {
		fd, done, err := connectTCP(c.addr)
		if err != nil {
			return failErr(ctx, start, c.timeout, err)
		}
		if done {
			rawClose(fd, true)
			return pass(start, "connected")
		}
		conn, err := waitConnect(ctx, fd, c.addr)
		if err != nil {
			return failErr(ctx, start, c.timeout, err)
		}
		conn.abort()
		return pass(start, "connected")
	}
	conn, err := dialTCP(ctx, c.addr)
	if err != nil {
		return failErr(ctx, start, c.timeout, err)
	}
	defer conn.abort()
	defer bindConn(ctx, conn)()
	if c.send != nil {
		if _, err := conn.Write(c.send); err != nil {
			return failErr(ctx, start, c.timeout, err)
		}
	}
	if c.expect == nil {
		return passf(start, "connected, sent %d bytes", len(c.send))
	}
	got, err := readUntil(conn, c.expect)
	if bytes.Contains(got, c.expect) {
		return pass(start, "reply matches")
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return failErr(ctx, start, c.timeout, err)
	}
	return fail(start, KindMismatch, "reply %q does not contain %q", clip(string(got), 40), clip(string(c.expect), 40))
}

// readUntil reads from r until want appears, the reply reaches maxReply,
// or r ends.
func readUntil(r io.Reader, want []byte) ([]byte, error) {
	buf := make([]byte, 0, 512)
	for len(buf) < maxReply {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if bytes.Contains(buf, want) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// bindConn makes every read and write on conn end at ctx's deadline or
// when ctx is canceled. The returned function releases the binding.
func bindConn(ctx context.Context, conn net.Conn) func() bool {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
}
