package healthz

import (
	"context"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// dialTCP connects to addr, bounded by ctx. It is net.Dialer's job done
// with fewer system calls: no name resolution, no keep-alive, no-delay or
// address look-ups on a connection that lives for one check (about half
// of the calls a net.Dial makes). The socket is non-blocking and
// registered with the runtime's poller through os.NewFile, so waiting for
// the handshake, reads and writes park the goroutine, not a thread.
func dialTCP(ctx context.Context, addr netip.AddrPort) (*sockConn, error) {
	var (
		domain = unix.AF_INET
		sa     unix.Sockaddr
	)
	if a := addr.Addr(); a.Is4() || a.Is4In6() {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: a.Unmap().As4()}
	} else {
		domain = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: a.As16()}
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	cerr := unix.Connect(fd, sa)
	if cerr != nil && cerr != unix.EINPROGRESS && cerr != unix.EINTR {
		unix.Close(fd)
		return nil, os.NewSyscallError("connect", cerr)
	}
	f := os.NewFile(uintptr(fd), "tcp")
	c := &sockConn{File: f, remote: net.TCPAddrFromAddrPort(addr)}
	if cerr == nil {
		return c, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = f.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Now()) })
	rc, err := f.SyscallConn()
	if err == nil {
		werr := rc.Write(func(fd uintptr) bool {
			// The poller forgets readiness seen before this call: ask the
			// socket itself whether the handshake is over.
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if n, perr := unix.Poll(pfd, 0); perr == nil && n == 0 {
				return false // under way: wait for the poller
			}
			v, gerr := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
			switch {
			case gerr != nil:
				err = os.NewSyscallError("getsockopt", gerr)
			case v != 0:
				err = os.NewSyscallError("connect", unix.Errno(v))
			}
			return true
		})
		if werr != nil {
			err = werr
		}
	}
	stop()
	if err != nil {
		f.Close()
		return nil, err
	}
	_ = f.SetWriteDeadline(time.Time{})
	return c, nil
}

// sockConn is a connected TCP socket as a net.Conn (for TLS and HTTP).
type sockConn struct {
	*os.File
	remote net.Addr
}

func (c *sockConn) LocalAddr() net.Addr  { return &net.TCPAddr{} }
func (c *sockConn) RemoteAddr() net.Addr { return c.remote }

// abort closes c with a reset: no TIME_WAIT on either side.
func (c *sockConn) abort() {
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		})
	}
	_ = c.Close()
}
