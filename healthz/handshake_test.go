package healthz

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/config"
)

// TestEventLoopWaitsForHandshakes: checks whose connection is not over
// within connect(2) wait for it through the epoll set, on new sockets and
// on reused ones whose one-shot registration an earlier check left
// disabled. The target is a loopback listener whose accept queue is full,
// so the kernel drops the checks' SYNs and the handshake completes on the
// retransmission a second later, as a remote peer's would.
func TestEventLoopWaitsForHandshakes(t *testing.T) {
	srv := newQueueServer(t)
	fill := func() {
		t.Helper()
		c, err := net.DialTimeout("tcp", srv.addr.String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	fill() // the queue holds one connection: now it is full

	m := NewManager(Options{rand: func(int64) int64 { return 0 }})
	tcp, http := owner("tcp", srv.addr), owner("http", srv.addr)
	mk := func(s Spec) Spec {
		s = spec(s, 1500*time.Millisecond)
		s.Interval = config.Duration(2 * time.Second)
		return s
	}
	if err := m.Update([]Want{{Owner: tcp, Spec: mk(Spec{Type: TypeTCP})}, {Owner: http, Spec: mk(Spec{Type: TypeHTTP, Path: "/"})}}); err != nil {
		t.Fatal(err)
	}
	runManager(t, m)
	t.Cleanup(srv.stop) // before the manager's leak check
	round := func(n uint64, slow bool) time.Time {
		t.Helper()
		var at time.Time
		for _, o := range []Owner{tcp, http} {
			var st Status
			eventually(t, "check "+o.Service, func() bool { st, _ = statusOf(m, o); return st.Checks >= n })
			r := st.Last
			if !r.OK {
				t.Fatalf("%s check %d: %s", o.Service, n, r)
			}
			if slow && r.Latency < 800*time.Millisecond || !slow && r.Latency > 500*time.Millisecond {
				t.Errorf("%s check %d took %s; want the handshake to wait for the SYN's retransmission: %v", o.Service, n, r.Latency, slow)
			}
			at = r.At
		}
		return at
	}

	time.Sleep(300 * time.Millisecond) // the first SYNs are dropped
	srv.serve(t, true)
	round(1, true)
	at := round(2, false) // over within the calls: registrations left disabled
	srv.serve(t, false)
	fill()
	time.Sleep(time.Until(at.Add(2*time.Second + 300*time.Millisecond)))
	srv.serve(t, true)
	round(3, true) // the same sockets, registrations enabled again
	if n := m.loop.Load().made.Load(); n != 2 {
		t.Errorf("%d sockets made for two checks of three rounds, want 2", n)
	}
}

// queueServer is a loopback listener that, while serving, accepts and
// answers HTTP requests with 200 and otherwise accepts nothing and has an
// accept queue of one.
type queueServer struct {
	fd      int
	addr    netip.AddrPort
	serving atomic.Bool
	done    chan struct{}
	wg      sync.WaitGroup
}

func newQueueServer(t *testing.T) *queueServer {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	s := &queueServer{fd: fd, addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port)), done: make(chan struct{})}
	s.wg.Add(1)
	go s.run()
	t.Cleanup(s.stop)
	return s
}

// serve starts or stops serving: listen(2) again sets the queue's size.
func (s *queueServer) serve(t *testing.T, on bool) {
	t.Helper()
	backlog := 0
	if on {
		backlog = 64
	}
	if err := unix.Listen(s.fd, backlog); err != nil {
		t.Fatal(err)
	}
	s.serving.Store(on)
}

func (s *queueServer) run() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-time.After(2 * time.Millisecond):
		}
		if !s.serving.Load() {
			continue
		}
		for {
			nfd, _, err := unix.Accept4(s.fd, unix.SOCK_CLOEXEC)
			if err != nil {
				break
			}
			s.wg.Add(1)
			go s.answer(nfd)
		}
	}
}

func (s *queueServer) answer(fd int) {
	defer s.wg.Done()
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(time.Second))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 512)
	n, _ := unix.Read(fd, buf)
	if n > 0 && bytes.HasPrefix(buf[:n], []byte("GET ")) {
		_, _ = unix.Write(fd, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
	}
}

func (s *queueServer) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	s.wg.Wait()
	unix.Close(s.fd)
}
