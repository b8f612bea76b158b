package healthz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The scheduler is an event loop of its own, as keepalived's checker is:
// one goroutine waits on an epoll set that holds the sockets of the checks
// under way and an eventfd that wakes it, until the next check is due.
// The epoll set is itself registered with the Go runtime's poller, and
// the goroutine parks there (with a deadline) rather than in a blocking
// epoll_wait(2): a thread blocked in a system call would make the
// runtime's monitor take its processor away and wake up often. Plain tcp checks and http checks
// that look at the status only (no TLS, no expect_body) run in it as
// small state machines on non-blocking sockets: no goroutine, no
// hand-over between threads, a dozen system calls a check. Every other
// check is handed to a worker goroutine (Manager.hand).

// reactiveChecker is a Checker whose check the event loop may run itself:
// reactive returns how, or nil when this check needs a worker.
type reactiveChecker interface {
	reactive() reactive
}

// reactive is a check the event loop runs itself.
type reactive interface {
	// request is written once connected; nil for a plain connect check.
	request() []byte
	// verdict decides from the reply read so far (eof: the peer closed),
	// or returns false to read more.
	verdict(start time.Time, reply []byte, eof bool) (Result, bool)
}

// flight is a reactive check under way.
type flight struct {
	p         *probe
	rc        reactive
	fd        int
	start     time.Time
	deadline  time.Time
	req       []byte // left to write
	buf       []byte // read so far, in store
	connected bool
	reading   bool
	store     [maxStatusLine]byte // in the flight, which the loop reuses
}

// maxStatusLine bounds what an event-loop http check reads to find the
// status line.
const maxStatusLine = 512

// loop is the event loop's state, owned by its goroutine.
type loop struct {
	m       *Manager
	epfd    int
	ep      *os.File // epfd, registered with the runtime's poller
	raw     syscall.RawConn
	evfd    int
	flights map[int32]*flight
	events  []unix.EpollEvent
	// spare are sockets of finished checks, disconnected and still in
	// the epoll set, by family (0 IPv4, 1 IPv6): a check takes one
	// instead of making a socket, registering it and closing it.
	spare [2][]int
	// armed is, by fd, the events a socket's registration is enabled
	// for, 0 when disabled: sockets are registered one-shot, and the
	// registration is disabled once the loop has been told of an event
	// (see begin).
	armed []uint32
	// made counts the sockets made, for tests of their reuse.
	made atomic.Int64
	// free are flights of finished checks, for the next (newFlight).
	free []*flight

	mu     sync.Mutex // wake against close: a closed eventfd's number may be reused
	closed bool
}

func newLoop(m *Manager) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	ep := os.NewFile(uintptr(epfd), "epoll")
	raw, err := ep.SyscallConn()
	if err != nil {
		unix.Close(evfd)
		ep.Close()
		return nil, err
	}
	return &loop{m: m, epfd: epfd, ep: ep, raw: raw, evfd: evfd, flights: map[int32]*flight{}, events: make([]unix.EpollEvent, 128)}, nil
}

// poll waits until the epoll set has events or deadline passes, and
// returns the events.
func (l *loop) poll(deadline time.Time) []unix.EpollEvent {
	_ = l.ep.SetReadDeadline(deadline)
	n := 0
	_ = l.raw.Read(func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
		if e != 0 {
			return e != unix.EINTR && e != unix.EAGAIN
		}
		n = int(r)
		return n > 0
	})
	return l.events[:n]
}

// wake makes epoll_wait return.
func (l *loop) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		one := uint64(1)
		_, _, _ = unix.RawSyscall(unix.SYS_WRITE, uintptr(l.evfd), uintptr(unsafe.Pointer(&one)), 8)
	}
}

func (l *loop) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for fd := range l.flights {
		rawClose(int(fd), true)
	}
	for _, fds := range l.spare {
		for _, fd := range fds {
			rawClose(fd, false)
		}
	}
	unix.Close(l.evfd)
	l.ep.Close()
}

// run starts due checks, runs the reactive ones and hands the others to
// workers, until ctx ends.
func (l *loop) run(ctx context.Context) {
	m := l.m
	stop := context.AfterFunc(ctx, l.wake)
	defer stop()
	var due []*probe
	for ctx.Err() == nil {
		m.mu.Lock()
		now := time.Now()
		due = due[:0]
		for m.queue.len() > 0 && m.queue.dueBy(now.Add(minTick/2)) {
			due = append(due, m.queue.pop())
		}
		next := now.Add(time.Hour)
		if m.queue.len() > 0 {
			next = m.queue.peek()
		}
		m.mu.Unlock()
		for _, p := range due {
			if p.rc != nil && len(l.flights) < m.opts.MaxConcurrent {
				l.begin(p, p.rc)
				continue
			}
			if !m.hand(ctx, job{p: p, run: p.checker.Check}) {
				return
			}
		}
		now = time.Now()
		for _, f := range l.flights {
			if !f.deadline.After(now) {
				l.finish(f, fail(f.start, KindTimeout, "timeout after %s", f.p.spec.Timeout))
			} else if f.deadline.Before(next) {
				next = f.deadline
			}
		}
		for _, ev := range l.poll(now.Add(max(next.Sub(now), minTick))) {
			if int(ev.Fd) == l.evfd {
				var b [8]byte
				_, _ = unix.Read(l.evfd, b[:])
				continue
			}
			if int(ev.Fd) < len(l.armed) {
				l.armed[ev.Fd] = 0
			}
			if f := l.flights[ev.Fd]; f != nil {
				l.step(f, ev.Events)
			}
		}
	}
}

// maxSpare bounds the spare sockets of each family.
const maxSpare = 256

// begin starts a reactive check.
//
// Its socket is a spare one when there is one: sockets stay in the epoll
// set from the check that made them until the loop closes them, and a
// finished check disconnects its socket (connect with AF_UNSPEC: a reset
// where the peer has a connection, as close with SO_LINGER 0 does) and
// keeps it for the next. A check then costs connect, the wake-up and the
// disconnect: no socket to make, register and free.
//
// Sockets are registered one-shot and edge-triggered: the kernel tells of
// one event and then disables the registration until the loop enables it
// again (arm), which it does only for a check that has to wait. A check
// that is over within its calls (a near peer answers a connect in the
// call) leaves its socket disabled, and then the state changes of that
// socket (connected, reset) wake nothing: with the registration enabled,
// each of them woke the runtime's poller (where the epoll set is
// registered) on a thread with nothing to do, several times a check. epoll
// reports the state of a socket at the time it reports, so an event left
// over from a socket's previous check is either true of the new connection
// or not reported; the loop drops events of sockets without a check.
func (l *loop) begin(p *probe, rc reactive) {
	start := time.Now()
	fd, err := l.socket(p.target.Addr)
	if err != nil {
		l.m.record(p, fail(start, KindOther, "%v", err))
		return
	}
	// A check that writes first does not ask whether the connection is
	// over: its write does (it fails with EAGAIN while connecting).
	req := rc.request()
	done, err := connectFD(fd, p.target.Addr, req == nil)
	if err != nil {
		l.recycle(fd, p.target.Addr)
		l.m.record(p, failErr(context.Background(), start, p.spec.Timeout.D(), err))
		return
	}
	if done && req == nil {
		l.recycle(fd, p.target.Addr)
		l.m.record(p, pass(start, "connected"))
		return
	}
	f := l.newFlight()
	f.p, f.rc, f.fd, f.start, f.deadline, f.req = p, rc, fd, start, start.Add(p.spec.Timeout.D()), req
	if done || req != nil {
		f.connected = done
		if r, over := l.talk(f); over {
			l.recycle(fd, p.target.Addr)
			l.freeFlight(f)
			l.m.record(p, r)
			return
		}
	}
	if err := l.await(f); err != nil {
		l.finish(f, fail(start, KindOther, "%v", err))
	}
}

// newFlight returns a cleared flight, a used one if there is one.
func (l *loop) newFlight() *flight {
	if n := len(l.free); n > 0 {
		f := l.free[n-1]
		l.free = l.free[:n-1]
		return f
	}
	return &flight{}
}

// freeFlight clears f and keeps it for newFlight.
func (l *loop) freeFlight(f *flight) {
	if len(l.free) >= maxSpare {
		return
	}
	f.p, f.rc, f.req, f.buf, f.connected, f.reading = nil, nil, nil, nil, false, false
	l.free = append(l.free, f)
}

// socket returns a spare socket of addr's family, or a new one added to
// the epoll set.
func (l *loop) socket(addr netip.AddrPort) (int, error) {
	fam := family(addr)
	if n := len(l.spare[fam]); n > 0 {
		fd := l.spare[fam][n-1]
		l.spare[fam] = l.spare[fam][:n-1]
		return fd, nil
	}
	fd, err := newSocket(addr)
	if err != nil {
		return -1, err
	}
	l.made.Add(1)
	// Registered for what a new socket waits for first: its connection.
	ev := unix.EpollEvent{Events: waitWrite, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		rawClose(fd, false)
		return -1, os.NewSyscallError("epoll_ctl", err)
	}
	for len(l.armed) <= fd {
		l.armed = append(l.armed, 0)
	}
	l.armed[fd] = waitWrite
	return fd, nil
}

// What a check's socket waits for: to be writable (connected, or room for
// the rest of the request) or readable (the reply). Errors and hang-ups
// are always reported.
const (
	waitWrite = unix.EPOLLOUT | unix.EPOLLET | unix.EPOLLONESHOT
	waitRead  = unix.EPOLLIN | unix.EPOLLET | unix.EPOLLONESHOT
)

// await leaves f waiting for its socket, whose registration it enables
// for what f waits for when it is not already. It reports whether that
// worked.
func (l *loop) await(f *flight) error {
	l.flights[int32(f.fd)] = f
	want := uint32(waitWrite)
	if f.reading {
		want = waitRead
	}
	if l.armed[f.fd] == want {
		return nil
	}
	ev := unix.EpollEvent{Events: want, Fd: int32(f.fd)}
	if _, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(l.epfd), unix.EPOLL_CTL_MOD, uintptr(f.fd), uintptr(unsafe.Pointer(&ev)), 0, 0); e != 0 {
		return os.NewSyscallError("epoll_ctl", e)
	}
	l.armed[f.fd] = want
	return nil
}

// recycle disconnects fd and keeps it as a spare, or closes it (with a
// reset) when it cannot be disconnected or enough are spare.
func (l *loop) recycle(fd int, addr netip.AddrPort) {
	fam := family(addr)
	if len(l.spare[fam]) >= maxSpare || !disconnect(fd) {
		rawClose(fd, true)
		return
	}
	l.spare[fam] = append(l.spare[fam], fd)
}

func family(addr netip.AddrPort) int {
	if addr.Addr().Unmap().Is4() {
		return 0
	}
	return 1
}

// step moves a check on after an event of its socket.
func (l *loop) step(f *flight, events uint32) {
	if !f.connected {
		// A connection that failed reports an error (and hangs up); only
		// then is the reason worth a system call.
		if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 || events&unix.EPOLLOUT == 0 {
			if err := sockError(f.fd); err != nil {
				l.finish(f, failErr(context.Background(), f.start, f.p.spec.Timeout.D(), err))
				return
			}
		}
		f.connected = true
		if f.req == nil {
			l.finish(f, pass(f.start, "connected"))
			return
		}
	}
	if r, over := l.talk(f); over {
		l.finish(f, r)
		return
	}
	if err := l.await(f); err != nil {
		l.finish(f, fail(f.start, KindOther, "%v", err))
	}
}

// talk writes what is left of the request and reads what has come,
// without waiting. It returns the result once the check is decided.
func (l *loop) talk(f *flight) (Result, bool) {
	for !f.reading {
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(f.fd), uintptr(unsafe.Pointer(&f.req[0])), uintptr(len(f.req)))
		switch {
		case e == unix.EAGAIN:
			// Still connecting, or no room: writable tells.
			return Result{}, false
		case e != 0:
			// Before the connection is known to be up, an error of the
			// write is the connection's (refused, unreachable).
			call := "write"
			if !f.connected {
				call = "connect"
			}
			return failErr(context.Background(), f.start, f.p.spec.Timeout.D(), os.NewSyscallError(call, e)), true
		}
		f.connected = true
		if f.req = f.req[n:]; len(f.req) == 0 {
			f.reading = true
			f.buf = f.store[:0]
			// The reply cannot be there yet: its arrival wakes the
			// loop (edge-triggered), so no read now.
			return Result{}, false
		}
	}
	for {
		room := f.buf[len(f.buf):cap(f.buf)]
		if len(room) == 0 {
			return f.rc.verdict(f.start, f.buf, true)
		}
		n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(f.fd), uintptr(unsafe.Pointer(&room[0])), uintptr(len(room)))
		switch {
		case e == unix.EAGAIN:
			return f.rc.verdict(f.start, f.buf, false)
		case e != 0:
			if r, over := f.rc.verdict(f.start, f.buf, false); over {
				return r, true
			}
			return failErr(context.Background(), f.start, f.p.spec.Timeout.D(), os.NewSyscallError("read", e)), true
		case n == 0:
			return f.rc.verdict(f.start, f.buf, true)
		}
		f.buf = f.buf[:len(f.buf)+int(n)]
		if r, over := f.rc.verdict(f.start, f.buf, false); over {
			return r, true
		}
	}
}

// finish ends a check's connection, keeps its socket for the next, and
// records its result.
func (l *loop) finish(f *flight, r Result) {
	delete(l.flights, int32(f.fd))
	l.recycle(f.fd, f.p.target.Addr)
	p := f.p
	l.freeFlight(f)
	l.m.record(p, r)
}

// A plain tcp check is reactive.
func (c *tcpChecker) reactive() reactive {
	if c.send != nil || c.expect != nil {
		return nil
	}
	return c
}

func (c *tcpChecker) request() []byte { return nil }

func (c *tcpChecker) verdict(start time.Time, _ []byte, _ bool) (Result, bool) {
	return pass(start, "connected"), true
}

// An http check that looks at the status line only is reactive.
func (c *httpChecker) reactive() reactive {
	if c.tls != nil || c.body != nil {
		return nil
	}
	return reactiveHTTP{c}
}

// reactiveHTTP is an http check that looks at the status line only.
type reactiveHTTP struct{ *httpChecker }

func (c reactiveHTTP) request() []byte { return c.req }

func (c reactiveHTTP) verdict(start time.Time, reply []byte, eof bool) (Result, bool) {
	line, _, complete := bytes.Cut(reply, []byte("\n"))
	if !complete && !eof {
		return Result{}, false
	}
	if len(reply) == 0 {
		return fail(start, KindProtocol, "connection closed before an HTTP reply"), true
	}
	code, err := statusCode(line)
	if err != nil {
		return fail(start, KindProtocol, "not an HTTP reply"), true
	}
	if !c.statusOK(code) {
		return fail(start, KindStatus, "HTTP %d", code), true
	}
	return pass(start, httpReason(code)), true
}

// statusCode reads the code of an HTTP/1.x status line.
func statusCode(line []byte) (int, error) {
	line = bytes.TrimRight(line, "\r")
	rest, ok := bytes.CutPrefix(line, []byte("HTTP/1."))
	if !ok || len(rest) < 5 || rest[1] != ' ' || len(rest) > 5 && rest[5] != ' ' {
		return 0, errors.New("malformed status line")
	}
	code, err := strconv.Atoi(string(rest[2:5]))
	if err != nil || code < 100 || code > 999 {
		return 0, fmt.Errorf("malformed status code %q", rest[2:5])
	}
	return code, nil
}

// httpReason is the reason of a passing check that got code, without
// formatting for the common codes.
func httpReason(code int) string {
	switch code {
	case 200:
		return "HTTP 200"
	case 204:
		return "HTTP 204"
	case 301:
		return "HTTP 301"
	case 302:
		return "HTTP 302"
	case 304:
		return "HTTP 304"
	}
	return "HTTP " + strconv.Itoa(code)
}
