package ipvs

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Socket tuning. The receive buffer must hold the acknowledgements of a
// whole window of pipelined requests (each is a separate skb of about 1
// KiB true size) so that the kernel never drops one.
const (
	rcvBufSize  = 8 << 20
	sndBufSize  = 4 << 20
	recvBufLen  = 128 << 10
	pollSlice   = 100 * time.Millisecond
	defaultWait = 10 * time.Second
)

// errLost marks a socket whose conversation state is unknown (a reply
// that did not come in time, an overrun): it is replaced before reuse.
var errLost = errors.New("netlink reply lost")

// conn is one generic-netlink socket with a reusable receive buffer.
type conn struct {
	fd  int
	buf []byte
	bad bool // reopen before the next use
}

// openConn opens a generic-netlink socket in the network namespace ns
// (the caller's when ns is not open).
func openConn(ns netns.NsHandle) (*conn, error) {
	if ns.IsOpen() {
		var c *conn
		err := inNetns(ns, func() error {
			var err error
			c, err = openConnHere()
			return err
		})
		return c, err
	}
	return openConnHere()
}

func openConnHere() (*conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("open generic netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind generic netlink socket: %w", err)
	}
	// Larger buffers: forced when we may (CAP_NET_ADMIN), else as far as
	// the sysctl limits allow.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBufSize) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBufSize)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndBufSize) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndBufSize)
	}
	// Error messages without a copy of the failed request keep the
	// receive queue small; older kernels without it work as well.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	return &conn{fd: fd, buf: make([]byte, recvBufLen)}, nil
}

// inNetns runs fn on a locked OS thread inside ns and moves the thread
// back. A thread that cannot be moved back stays locked, so the runtime
// retires it with the goroutine instead of reusing it in the wrong
// namespace.
func inNetns(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	cur, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current network namespace: %w", err)
	}
	defer cur.Close()
	if cur.Equal(ns) {
		defer runtime.UnlockOSThread()
		return fn()
	}
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace: %w", err)
	}
	ferr := fn()
	if err := netns.Set(cur); err != nil {
		return errors.Join(ferr, fmt.Errorf("return to network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

func (c *conn) close() error {
	if c == nil || c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

// send writes one datagram holding one or more netlink messages.
func (c *conn) send(b []byte) error {
	for {
		err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			c.bad = true
			return fmt.Errorf("send netlink request: %w", err)
		}
		return nil
	}
}

// recv returns the next datagram from the kernel. The wait is bounded by
// the context's deadline, or by defaultWait when it has none, and ends
// early when the context is cancelled. The returned slice is valid until
// the next recv.
func (c *conn) recv(ctx context.Context) ([]byte, error) {
	limit := time.Now().Add(defaultWait)
	if d, ok := ctx.Deadline(); ok {
		limit = d
	}
	for {
		n, _, flags, from, err := unix.Recvmsg(c.fd, c.buf, nil, unix.MSG_DONTWAIT)
		switch {
		case err == nil:
			if flags&unix.MSG_TRUNC != 0 {
				c.bad = true
				return nil, fmt.Errorf("%w: datagram larger than %d bytes", errLost, len(c.buf))
			}
			if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
				continue // not from the kernel
			}
			return c.buf[:n], nil
		case err == unix.EINTR:
			continue
		case err == unix.ENOBUFS:
			c.bad = true
			return nil, fmt.Errorf("%w: receive queue overrun: %w", errLost, err)
		case err != unix.EAGAIN:
			c.bad = true
			return nil, fmt.Errorf("receive netlink reply: %w", err)
		}
		if err := ctx.Err(); err != nil {
			c.bad = true
			return nil, fmt.Errorf("%w: %w", errLost, err)
		}
		left := time.Until(limit)
		if left <= 0 {
			c.bad = true
			if _, ok := ctx.Deadline(); ok {
				return nil, fmt.Errorf("%w: %w", errLost, context.DeadlineExceeded)
			}
			return nil, fmt.Errorf("%w: no answer within %s", errLost, defaultWait)
		}
		wait := min(left, pollSlice)
		ms := int((wait + time.Millisecond - 1) / time.Millisecond)
		_, err = unix.Poll([]unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}, ms)
		if err != nil && err != unix.EINTR {
			c.bad = true
			return nil, fmt.Errorf("poll netlink socket: %w", err)
		}
	}
}

// request sends one message and collects its answer until NLMSG_DONE (a
// dump) or the acknowledgement (a plain request, which must carry
// NLM_F_ACK). fn sees the payload of each data message; after an error
// from fn the rest of the answer is still read, so the socket stays in
// step.
func (c *conn) request(ctx context.Context, msg []byte, seq uint32, fn func(payload []byte) error) error {
	if err := c.send(msg); err != nil {
		return err
	}
	for {
		b, err := c.recv(ctx)
		if err != nil {
			return err
		}
		done := false
		var ferr error
		err = parseMessages(b, func(m nlMsg) error {
			if m.Seq != seq || done {
				return nil // a late answer to an abandoned request
			}
			switch m.Type {
			case nlmsgNoop:
				return nil
			case nlmsgError:
				e, err := errnoOf(m.Payload)
				if err != nil {
					return err
				}
				done = true
				if e != 0 {
					ferr = unix.Errno(e)
				}
				return nil
			case nlmsgDone:
				done = true
				if len(m.Payload) >= 4 {
					if e, _ := errnoOf(m.Payload); e > 0 {
						ferr = unix.Errno(e)
					}
				}
				return nil
			}
			// Data: a dump ends with NLMSG_DONE, a plain request (always
			// sent with NLM_F_ACK) with its acknowledgement.
			if ferr == nil && fn != nil {
				ferr = fn(m.Payload)
			}
			return nil
		})
		if err != nil {
			c.bad = true
			return err
		}
		if done {
			return ferr
		}
	}
}
