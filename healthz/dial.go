package healthz

import (
	"context"
	"net"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TCP connections of checks are made with a few system calls of our own
// rather than net.Dialer, for two reasons of cost measured at thousands
// of checks a second:
//   - net.Dial makes about twice the calls a check needs (name
//     resolution, keep-alive and no-delay options, address look-ups);
//   - connect(2) and close(2) of a loopback or LAN connection do the
//     handshake and the reset in the call itself, long enough for the Go
//     scheduler to hand the thread's processor to another thread and take
//     it back afterwards (futex wake-ups on every check). They are made
//     here as raw calls: the non-blocking socket never sleeps in them.
// Waiting for a handshake that is not over at once goes through the
// runtime's poller (os.NewFile on the non-blocking socket), bounded by the
// check's context.

// connectTCP starts a connection to addr on a new non-blocking socket. It
// returns the socket and whether the handshake is over; a refused
// connection is an error.
func connectTCP(addr netip.AddrPort) (fd int, done bool, err error) {
	fd, err = newSocket(addr)
	if err != nil {
		return -1, false, err
	}
	done, err = connectFD(fd, addr, true)
	if err != nil {
		rawClose(fd, false)
		return -1, false, err
	}
	return fd, done, nil
}

// newSocket makes a non-blocking TCP socket of addr's family.
func newSocket(addr netip.AddrPort) (int, error) {
	domain := unix.AF_INET
	if addr.Addr().Unmap().Is6() {
		domain = unix.AF_INET6
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}

// connectFD starts a connection to addr on the non-blocking socket fd
// (new, or disconnected by disconnect). It returns whether the handshake
// is over; a refused connection is an error, and fd stays open. With
// probe false it does not ask whether a connection under way is over
// already (the caller's first write will tell).
func connectFD(fd int, addr netip.AddrPort, probe bool) (done bool, err error) {
	a := addr.Addr().Unmap()
	var e unix.Errno
	port := [2]byte{byte(addr.Port() >> 8), byte(addr.Port())}
	if a.Is4() {
		sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		*(*[2]byte)(unsafe.Pointer(&sa.Port)) = port
		_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	} else {
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
		*(*[2]byte)(unsafe.Pointer(&sa.Port)) = port
		_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	}
	switch e {
	case 0:
		return true, nil
	case unix.EINPROGRESS, unix.EINTR:
		if !probe {
			return false, nil
		}
		// Over already (a loopback or near peer answers within the call)?
		pfd := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if n, _, perr := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd[0])), 1, uintptr(unsafe.Pointer(&unix.Timespec{})), 0, 0, 0); perr != 0 || n == 0 {
			return false, nil
		}
		// Writable without an error or a hang-up is connected; only a
		// failed connection is worth asking for its reason.
		if pfd[0].Revents&(unix.POLLERR|unix.POLLHUP) == 0 && pfd[0].Revents&unix.POLLOUT != 0 {
			return true, nil
		}
		if err := sockError(fd); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, os.NewSyscallError("connect", e)
}

// disconnect ends fd's connection, whatever its state, with a reset
// where the peer has one to tear down (connect with AF_UNSPEC: what
// close does with SO_LINGER 0), and leaves the socket unbound and ready
// for another connect. It reports whether that worked.
func disconnect(fd int) bool {
	sa := unix.RawSockaddrInet4{Family: unix.AF_UNSPEC}
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	return e == 0
}

// sockError returns the pending error of a socket (SO_ERROR) as a connect
// error.
func sockError(fd int) error {
	var v int32
	n := uint32(4)
	if _, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_ERROR, uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0); e != 0 {
		return os.NewSyscallError("getsockopt", e)
	}
	if v != 0 {
		return os.NewSyscallError("connect", unix.Errno(v))
	}
	return nil
}

// rawClose closes a socket the poller does not know, with a reset when
// reset is set (no TIME_WAIT on either side).
func rawClose(fd int, reset bool) {
	if reset {
		l := unix.Linger{Onoff: 1}
		_, _, _ = unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_LINGER, uintptr(unsafe.Pointer(&l)), unsafe.Sizeof(l), 0)
	}
	_, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// dialTCP connects to addr, bounded by ctx, for a check that talks.
func dialTCP(ctx context.Context, addr netip.AddrPort) (*sockConn, error) {
	fd, done, err := connectTCP(addr)
	if err != nil {
		return nil, err
	}
	if done {
		return &sockConn{File: os.NewFile(uintptr(fd), "tcp"), remote: net.TCPAddrFromAddrPort(addr)}, nil
	}
	return waitConnect(ctx, fd, addr)
}

// waitConnect waits through the poller for the handshake on fd.
func waitConnect(ctx context.Context, fd int, addr netip.AddrPort) (*sockConn, error) {
	f := os.NewFile(uintptr(fd), "tcp")
	c := &sockConn{File: f, remote: net.TCPAddrFromAddrPort(addr)}
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
			err = sockError(int(fd))
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
