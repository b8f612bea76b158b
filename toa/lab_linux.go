package toa

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/toa/format"
	"github.com/lvs-node/lvs-node/toa/internal/injector"
)

// Where says which packets of a lab connection carry the injected option.
type Where = injector.Where

// Packets an injected option goes into.
const (
	InSYN   = injector.SYN
	InACK   = injector.ACK
	InData  = injector.Data
	InEarly = injector.Early
)

// Lab is a private network namespace and cgroup in which a client plays
// the balancer: its sock_ops injector writes TOA options into its own
// packets, and a server in the same cgroup reports what accept() and
// getpeername() return. While a lab is open this process lives in its
// cgroup (sockets belong to the cgroup of the process that creates
// them); Close moves it back and removes everything.
type Lab struct {
	// Cgroup is the lab's cgroup v2 directory.
	Cgroup string
	// Server, when LabOptions.Server asked for it, is a cgroup below
	// Cgroup in which the lab makes its listeners: accepted sockets
	// belong to their listener's cgroup, so eBPF TOA attached there
	// sees the server's sockets and not the client's, as on a real
	// server behind a balancer. The injector, attached to Cgroup, runs
	// on both.
	Server string
	// Plain, when LabOptions.Server asked for it, is a second cgroup
	// below Cgroup, beside Server, with nothing attached: the same
	// server without eBPF TOA (ChurnPair).
	Plain string
	orig  string
	inj   *injector.Injector
	do    chan func()
	ns    netns.NsHandle
	done  chan struct{}
}

// LabOptions configure a lab.
type LabOptions struct {
	// Parent is the cgroup under which the lab's cgroup is made; empty
	// means the root of the unified hierarchy.
	Parent string
	// Addrs are put on the lab's loopback device: the balancers' and
	// the servers' addresses.
	Addrs []netip.Addr
	// Root is the root for reading the mount table (see Options).
	Root string
	// Server makes Lab.Server.
	Server bool
}

var labSeq atomic.Int64

// NewLab makes a lab.
func NewLab(o LabOptions) (*Lab, error) {
	opts := Options{Root: o.Root}
	parent := o.Parent
	if parent == "" {
		u, err := UnifiedCgroup(opts)
		if err != nil {
			return nil, err
		}
		parent = u
	}
	if _, err := cgroupDir(parent, opts); err != nil {
		return nil, err
	}
	l := &Lab{}
	l.Cgroup = filepath.Join(parent, fmt.Sprintf("lvs-toa-lab-%d-%d", os.Getpid(), labSeq.Add(1)))
	if err := os.Mkdir(l.Cgroup, 0o755); err != nil {
		return nil, fmt.Errorf("lab cgroup: %w", err)
	}
	fail := func(err error) (*Lab, error) {
		l.Close()
		return nil, err
	}
	orig, err := ownCgroup(opts)
	if err != nil {
		return fail(err)
	}
	l.orig = orig
	if err := moveSelf(l.Cgroup); err != nil {
		l.orig = ""
		return fail(err)
	}
	if l.inj, err = injector.Attach(l.Cgroup); err != nil {
		return fail(err)
	}
	if o.Server {
		if err := os.Mkdir(filepath.Join(l.Cgroup, "server"), 0o755); err != nil {
			return fail(fmt.Errorf("lab server cgroup: %w", err))
		}
		l.Server = filepath.Join(l.Cgroup, "server")
		if err := os.Mkdir(filepath.Join(l.Cgroup, "plain"), 0o755); err != nil {
			return fail(fmt.Errorf("lab plain cgroup: %w", err))
		}
		l.Plain = filepath.Join(l.Cgroup, "plain")
	}
	ready := make(chan error)
	l.do, l.done = make(chan func()), make(chan struct{})
	go l.thread(o.Addrs, ready)
	if err := <-ready; err != nil {
		return fail(err)
	}
	return l, nil
}

// thread runs the lab's namespace: a locked OS thread that makes every
// socket of the lab. It is retired, not reused, when the lab closes.
func (l *Lab) thread(addrs []netip.Addr, ready chan<- error) {
	runtime.LockOSThread()
	ns, err := netns.New()
	if err != nil {
		ready <- fmt.Errorf("lab network namespace: %w", err)
		close(l.done)
		return
	}
	l.ns = ns
	ready <- setupLo(ns, addrs)
	for f := range l.do {
		f()
	}
	ns.Close()
	close(l.done)
}

func setupLo(ns netns.NsHandle, addrs []netip.Addr) error {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := h.LinkSetUp(lo); err != nil {
		return err
	}
	for _, a := range addrs {
		if a.IsLoopback() {
			continue
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}, Flags: unix.IFA_F_NODAD}
		if err := h.AddrAdd(lo, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("lab address %s: %w", a, err)
		}
	}
	return nil
}

// run runs f on the lab's namespace thread.
func (l *Lab) run(f func() error) error {
	errc := make(chan error, 1)
	select {
	case l.do <- func() { errc <- f() }:
	case <-l.done:
		return errors.New("lab is closed")
	}
	return <-errc
}

// Inject makes the next connections carry opts (up to two well-formed
// options) in the packets where says; none: no option.
func (l *Lab) Inject(where Where, opts ...[]byte) error { return l.inj.Set(where, opts...) }

// InjectorStats returns how many options the injector wrote and how many
// writes the kernel refused (with the last error, a negative errno).
func (l *Lab) InjectorStats() (written, failed, lastErr int64, err error) { return l.inj.Stats() }

// Close removes the lab and puts this process back in its cgroup.
func (l *Lab) Close() error {
	var errs []error
	if l.inj != nil {
		errs = append(errs, l.inj.Close())
	}
	if l.do != nil {
		select {
		case <-l.done:
		default:
			close(l.do)
			<-l.done
		}
	}
	if l.orig != "" {
		errs = append(errs, moveSelf(l.orig))
	}
	for _, cg := range []string{l.Server, l.Plain} {
		if cg == "" {
			continue
		}
		if err := rmdirRetry(cg); err != nil {
			errs = append(errs, err)
		}
	}
	if l.Cgroup != "" {
		if err := rmdirRetry(l.Cgroup); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func rmdirRetry(dir string) error {
	var err error
	for range 100 {
		if err = unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("remove lab cgroup %s: %w", dir, err)
}

// ownCgroup returns this process's cgroup v2 directory.
func ownCgroup(opts Options) (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	root, err := UnifiedCgroup(opts)
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(root, rest), nil
		}
	}
	return "", errors.New("this process is in no cgroup v2")
}

func moveSelf(cg string) error {
	err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
	if err != nil {
		return fmt.Errorf("move into cgroup %s: %w", cg, err)
	}
	return nil
}

// Listen is how the lab's server listens.
type Listen int

// Servers.
const (
	ListenIPv4 Listen = iota // AF_INET
	ListenIPv6               // AF_INET6, IPv6 only
	ListenDual               // AF_INET6 on [::] with IPV6_V6ONLY off
)

func (s Listen) String() string { return [...]string{"ipv4", "ipv6", "dual-stack"}[s] }

// Conn is one connection made in a lab.
type Conn struct {
	Listen Listen
	// Server is the address the server listens on (ignored for a
	// dual-stack server, which listens on [::]) and the client dials.
	Server netip.Addr
	// Balancer is the client's source address.
	Balancer netip.Addr
	// Data: after accept, the client sends data and the server reads
	// it, then asks getpeername() again.
	Data bool
	// WhileOpen, if set, is called with the accepted socket before it
	// is closed.
	WhileOpen func(fd int) error
}

// Seen is what the server of a lab connection saw.
type Seen struct {
	// Balancer is the client's own address and port.
	Balancer netip.AddrPort
	// Accept and Peer are the addresses accept() and getpeername()
	// returned, as the kernel wrote them (IPv4 clients of a dual-stack
	// server as ::ffff:a.b.c.d).
	Accept, Peer netip.AddrPort
	// AcceptFamily is the address family of accept()'s address.
	AcceptFamily int
	// GoRemote is the remote address as Go's net package prints it.
	GoRemote netip.AddrPort
	// PeerAfterData is getpeername() after the data (Conn.Data).
	PeerAfterData netip.AddrPort
	// NAT64 is the answer of getsockopt(IPPROTO_IP, 4096), if any.
	NAT64    netip.AddrPort
	NAT64Err error
}

const labTimeout = 5 * time.Second

// Connect makes one connection through the lab and reports what the
// server saw. Every wait is bounded.
func (l *Lab) Connect(c Conn) (*Seen, error) {
	var seen Seen
	var lfd, cfd = -1, -1
	defer func() {
		if lfd >= 0 {
			unix.Close(lfd)
		}
		if cfd >= 0 {
			unix.Close(cfd)
		}
	}()
	var dst netip.AddrPort
	err := l.run(func() error {
		var err error
		lfd, dst, err = l.listen(c)
		if err != nil {
			return err
		}
		fam := unix.AF_INET
		if c.Balancer.Is6() {
			fam = unix.AF_INET6
		}
		if cfd, err = unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(cfd, sockaddr(netip.AddrPortFrom(c.Balancer, 0)))
	})
	if err != nil {
		return nil, fmt.Errorf("lab sockets: %w", err)
	}
	tv := unix.NsecToTimeval(labTimeout.Nanoseconds())
	for _, fd := range []int{lfd, cfd} {
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	}
	if err := connectBlocking(cfd, sockaddr(dst)); err != nil {
		return nil, fmt.Errorf("connect %s: %w", dst, err)
	}
	if sa, err := unix.Getsockname(cfd); err == nil {
		seen.Balancer = addrPort(sa)
	}
	nfd, sa, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	for err == unix.EINTR {
		nfd, sa, err = unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	}
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	defer unix.Close(nfd)
	seen.Accept = addrPort(sa)
	seen.AcceptFamily = family(sa)
	if sa, err := unix.Getpeername(nfd); err == nil {
		seen.Peer = addrPort(sa)
	} else {
		return nil, fmt.Errorf("getpeername: %w", err)
	}
	if dup, err := unix.Dup(nfd); err == nil {
		f := os.NewFile(uintptr(dup), "lab")
		if gc, err := net.FileConn(f); err == nil {
			// As Go prints it: IPv4 clients of dual-stack servers unmapped.
			if ap, err := netip.ParseAddrPort(gc.RemoteAddr().String()); err == nil {
				seen.GoRemote = ap
			}
			gc.Close()
		}
		f.Close()
		// The dup shares nfd's file description, and net.FileConn made
		// it non-blocking: make it blocking again, or the read of the
		// data below fails with EAGAIN when the data is not there yet.
		if err := unix.SetNonblock(nfd, false); err != nil {
			return nil, fmt.Errorf("accepted socket: %w", err)
		}
	}
	if c.Data {
		_, err := unix.Write(cfd, []byte("toa"))
		for err == unix.EINTR {
			_, err = unix.Write(cfd, []byte("toa"))
		}
		if err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
		buf := make([]byte, 16)
		_, err = unix.Read(nfd, buf)
		for err == unix.EINTR {
			_, err = unix.Read(nfd, buf)
		}
		if err != nil {
			return nil, fmt.Errorf("receive: %w", err)
		}
		if sa, err := unix.Getpeername(nfd); err == nil {
			seen.PeerAfterData = addrPort(sa)
		}
	}
	seen.NAT64, seen.NAT64Err = nat64Lookup(nfd)
	if c.WhileOpen != nil {
		if err := c.WhileOpen(nfd); err != nil {
			return nil, err
		}
	}
	return &seen, nil
}

// listen makes the server's listener, in the server cgroup if the lab
// has one (the process moves there for the call and back).
func (l *Lab) listen(c Conn) (int, netip.AddrPort, error) {
	return l.listenIn(l.Server, c)
}

// listenIn makes a listener in cgroup cg ("" for the lab's own).
func (l *Lab) listenIn(cg string, c Conn) (int, netip.AddrPort, error) {
	if cg == "" {
		return listen(c)
	}
	if err := moveSelf(cg); err != nil {
		return -1, netip.AddrPort{}, err
	}
	fd, dst, err := listen(c)
	if back := moveSelf(l.Cgroup); back != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, netip.AddrPort{}, back
	}
	return fd, dst, err
}

func listen(c Conn) (int, netip.AddrPort, error) {
	fam, bind := unix.AF_INET, netip.AddrPortFrom(c.Server, 0)
	if c.Listen != ListenIPv4 {
		fam = unix.AF_INET6
	}
	if c.Listen == ListenDual {
		bind = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, netip.AddrPort{}, err
	}
	if fam == unix.AF_INET6 {
		only := 1
		if c.Listen == ListenDual {
			only = 0
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, only); err != nil {
			unix.Close(fd)
			return -1, netip.AddrPort{}, err
		}
	}
	if err := unix.Bind(fd, sockaddr(bind)); err != nil {
		unix.Close(fd)
		return -1, netip.AddrPort{}, fmt.Errorf("bind %s: %w", bind, err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return -1, netip.AddrPort{}, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, netip.AddrPort{}, err
	}
	return fd, netip.AddrPortFrom(c.Server, addrPort(sa).Port()), nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	}
	return &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch s := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(s.Addr), uint16(s.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(s.Addr), uint16(s.Port))
	}
	return netip.AddrPort{}
}

func family(sa unix.Sockaddr) int {
	switch sa.(type) {
	case *unix.SockaddrInet4:
		return unix.AF_INET
	case *unix.SockaddrInet6:
		return unix.AF_INET6
	}
	return 0
}

// nat64Lookup asks getsockopt(IPPROTO_IP, TOA_SO_GET_LOOKUP) for the
// IPv6 client of an IPv4 socket.
func nat64Lookup(fd int) (netip.AddrPort, error) {
	var buf [20]byte
	l := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_IP, format.NAT64Lookup,
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return netip.AddrPort{}, e
	}
	if l < 18 {
		return netip.AddrPort{}, fmt.Errorf("NAT64 lookup returned %d bytes", l)
	}
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(buf[:16])), uint16(buf[16])<<8|uint16(buf[17])), nil
}

// PairStats is what ChurnPair measured for one of its two listeners.
type PairStats struct {
	// Times are the connections' times, in the order made.
	Times []time.Duration
	// Revealed counts the connections accept() saw as the wanted client.
	Revealed int
}

// ChurnPair makes 2n connections as Churn does, taking turns between a
// listener in the Server cgroup (with) and one in the Plain cgroup
// (without), in the order with, without, without, with, ..., so that
// drift and deferred kernel work fall on both alike, and times each
// connection. The lab must have been made with LabOptions.Server.
func (l *Lab) ChurnPair(c Conn, n int, want netip.AddrPort) (with, without PairStats, err error) {
	if l.Server == "" || l.Plain == "" {
		return with, without, errors.New("lab: ChurnPair needs LabOptions.Server")
	}
	err = l.run(func() error {
		lw, dw, err := l.listenIn(l.Server, c)
		if err != nil {
			return err
		}
		defer unix.Close(lw)
		lp, dp, err := l.listenIn(l.Plain, c)
		if err != nil {
			return err
		}
		defer unix.Close(lp)
		fam, src, toW := dialParams(c, dw)
		targets := [2]struct {
			lfd int
			to  unix.Sockaddr
			st  *PairStats
		}{{lw, toW, &with}, {lp, sockaddr(dp), &without}}
		with.Times, without.Times = make([]time.Duration, 0, n), make([]time.Duration, 0, n)
		for i := range 2 * n {
			tg := targets[(i+i/2)%2] // 0 1 1 0 0 1 1 0 ...
			start := time.Now()
			peer, err := connectOnce(fam, src, tg.to, tg.lfd, nil)
			if err != nil {
				return err
			}
			tg.st.Times = append(tg.st.Times, time.Since(start))
			if peer == want {
				tg.st.Revealed++
			}
		}
		return nil
	})
	return with, without, err
}

// dialParams gives the client's address family and source (the
// balancer, any port) for c, and dst as a socket address.
func dialParams(c Conn, dst netip.AddrPort) (fam int, src, to unix.Sockaddr) {
	fam = unix.AF_INET
	if c.Balancer.Is6() {
		fam = unix.AF_INET6
	}
	return fam, sockaddr(netip.AddrPortFrom(c.Balancer, 0)), sockaddr(dst)
}

// connectOnce makes one connection from src to a listener: socket, bind,
// connect, accept, getpeername, close both ends (the client with a
// reset: thousands of connections from one source would run out of
// ports in TIME_WAIT), and returns what accept() said of the peer.
// inspect, if not nil, sees the accepted socket before it is closed.
func connectOnce(fam int, src, to unix.Sockaddr, lfd int, inspect func(nfd int)) (netip.AddrPort, error) {
	cfd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer unix.Close(cfd)
	if err := unix.Bind(cfd, src); err != nil {
		return netip.AddrPort{}, fmt.Errorf("bind: %w", err)
	}
	if err := connectBlocking(cfd, to); err != nil {
		return netip.AddrPort{}, fmt.Errorf("connect: %w", err)
	}
	nfd, peer, err := rawAccept(lfd)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("accept: %w", err)
	}
	_, _ = rawGetpeername(nfd)
	if inspect != nil {
		inspect(nfd)
	}
	_ = unix.SetsockoptLinger(cfd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(nfd)
	return peer, nil
}

// rawAccept is accept4(2) as a server written in C, or Go's net package,
// calls it: x/sys/unix's Accept4 and Getpeername also ask getsockopt
// (SO_PROTOCOL) for every AF_INET and AF_INET6 address, which goes
// through eBPF TOA's getsockopt hook and is not what a server pays.
func rawAccept(lfd int) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	l := uint32(unix.SizeofSockaddrAny)
	fd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)),
		unix.SOCK_CLOEXEC, 0, 0)
	for e == unix.EINTR {
		l = uint32(unix.SizeofSockaddrAny)
		fd, _, e = unix.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)),
			unix.SOCK_CLOEXEC, 0, 0)
	}
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	return int(fd), rawAddrPort(&rsa), nil
}

// connectBlocking is connect(2) on a blocking socket that a signal (the
// Go runtime's preemption) may interrupt: the connection goes on after
// EINTR, so it waits (up to labTimeout) for the socket to be writable
// and returns the connection's result.
func connectBlocking(fd int, to unix.Sockaddr) error {
	err := unix.Connect(fd, to)
	if err != unix.EINTR {
		return err
	}
	deadline := time.Now().Add(labTimeout)
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(pfd, int(time.Until(deadline).Milliseconds()))
		if err == unix.EINTR && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.ETIMEDOUT
		}
		if serr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil {
			return err
		} else if serr != 0 {
			return unix.Errno(serr)
		}
		return nil
	}
}

// rawGetpeername is getpeername(2) without x/sys/unix's getsockopt (see
// rawAccept).
func rawGetpeername(fd int) (netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	l := uint32(unix.SizeofSockaddrAny)
	_, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)))
	if e != 0 {
		return netip.AddrPort{}, e
	}
	return rawAddrPort(&rsa), nil
}

// rawAddrPort reads an AF_INET or AF_INET6 socket address.
func rawAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// Churn makes n connections one after another, each accepted, asked
// getpeername() and closed on both ends (the server's calls are plain
// system calls, as a server makes them), all on the lab's thread, and
// returns the time they took and the socket option memory
// (SK_MEMINFO_OPTMEM, where the kernel charges socket storage) of the
// first accepted socket, and how many of them accept() saw as want.
func (l *Lab) Churn(c Conn, n int, want netip.AddrPort) (elapsed time.Duration, optmem uint32, revealed int, err error) {
	err = l.run(func() error {
		lfd, dst, err := l.listen(c)
		if err != nil {
			return err
		}
		defer unix.Close(lfd)
		fam, src, to := dialParams(c, dst)
		meminfo := func(nfd int) {
			var mi [unix.SK_MEMINFO_VARS]uint32
			sz := uint32(len(mi) * 4)
			if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(nfd), unix.SOL_SOCKET, unix.SO_MEMINFO,
				uintptr(unsafe.Pointer(&mi[0])), uintptr(unsafe.Pointer(&sz)), 0); e == 0 {
				optmem = mi[unix.SK_MEMINFO_OPTMEM]
			}
		}
		start := time.Now()
		for i := range n {
			inspect := meminfo
			if i > 0 {
				inspect = nil
			}
			peer, err := connectOnce(fam, src, to, lfd, inspect)
			if err != nil {
				return err
			}
			if peer == want {
				revealed++
			}
		}
		elapsed = time.Since(start)
		return nil
	})
	return elapsed, optmem, revealed, err
}
