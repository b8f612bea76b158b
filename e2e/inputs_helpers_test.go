//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/lab/topo"
)

// webServer is a real server's service that a test stops and starts: an
// HTTP GET is answered with the host's name (and /health with "ok"),
// each connection closed after its answer; a connection that starts
// with "ECHO\n" gets the name, then every line it sends back, until it
// closes.
type webServer struct {
	t    *testing.T
	h    *topo.Host
	port int
	mu   sync.Mutex
	ln   net.Listener
}

func serveWeb(t *testing.T, h *topo.Host, port int) *webServer {
	t.Helper()
	w := &webServer{t: t, h: h, port: port}
	w.start()
	t.Cleanup(w.stop)
	return w
}

func (w *webServer) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	ln, err := w.h.Listen("tcp", net.JoinHostPort("::", strconv.Itoa(w.port)))
	if err != nil {
		w.t.Fatalf("web server on %s: %v", w.h.Name, err)
	}
	w.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go w.serve(c)
		}
	}()
}

// stop closes the listener: new connections are refused, open ones go on.
func (w *webServer) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ln != nil {
		w.ln.Close()
		w.ln = nil
	}
}

func (w *webServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	if strings.TrimSpace(line) == "ECHO" {
		fmt.Fprintf(c, "%s\n", w.h.Name)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, l)
		}
	}
	for {
		h, err := r.ReadString('\n')
		if err != nil || strings.TrimSpace(h) == "" {
			break
		}
	}
	body := w.h.Name + "\n"
	if f := strings.Fields(line); len(f) > 1 && f[1] == "/health" {
		body = "ok\n"
	}
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
}

// httpGet asks addr for / from h and returns the body without its
// newline: the name of the real server that answered.
func httpGet(h *topo.Host, addr string, timeout time.Duration) (string, error) {
	c, err := h.Dial("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr)
	b, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", addr, err)
	}
	_, body, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok || !strings.HasPrefix(string(b), "HTTP/1.1 200") {
		return "", fmt.Errorf("bad answer from %s: %q", addr, b)
	}
	return strings.TrimSpace(body), nil
}

// request is one request of a stream.
type request struct {
	start, end time.Time
	server     string
	err        error
}

// stream makes requests one after the other from a client to addr until
// stopped (or max requests), and keeps every result.
type stream struct {
	mu   sync.Mutex
	reqs []request
	stop chan struct{}
	done chan struct{}
}

func startStream(h *topo.Host, addr string, max int) *stream {
	s := &stream{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for i := 0; i < max; i++ {
			select {
			case <-s.stop:
				return
			default:
			}
			r := request{start: time.Now()}
			r.server, r.err = httpGet(h, addr, 3*time.Second)
			r.end = time.Now()
			s.mu.Lock()
			s.reqs = append(s.reqs, r)
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *stream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// waitCount waits until n more requests than now have been made.
func (s *stream) waitMore(t *testing.T, n int) {
	t.Helper()
	want := s.count() + n
	waitFor(t, time.Minute, fmt.Sprintf("%d requests", want), func() bool { return s.count() >= want })
}

func (s *stream) end() []request {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// failures returns the failed requests that started at or after from.
func failures(reqs []request, from time.Time) []request {
	var out []request
	for _, r := range reqs {
		if r.err != nil && !r.start.Before(from) {
			out = append(out, r)
		}
	}
	return out
}

// weightEvent is a change of a destination's weight seen in the kernel.
type weightEvent struct {
	at      time.Time
	weight  int32
	present bool
}

// weightWatch samples the kernel's IPVS table in the director's
// namespace every 20 ms over netlink and records every change of each
// destination ("VIP:PORT RS:PORT").
type weightWatch struct {
	mu     sync.Mutex
	events map[string][]weightEvent
	cancel context.CancelFunc
	done   chan struct{}
}

func watchWeights(t *testing.T, dir *topo.Host) *weightWatch {
	t.Helper()
	var c *ipvs.Client
	if err := dir.Do(func() error {
		var err error
		c, err = ipvs.Open()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &weightWatch{events: map[string][]weightEvent{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer c.Close()
		for ctx.Err() == nil {
			tab, err := c.Table(ctx)
			if err == nil {
				w.record(tab, time.Now())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *weightWatch) close() {
	w.cancel()
	<-w.done
}

func (w *weightWatch) record(tab *ipvs.Table, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	for _, s := range tab.Services {
		if s.FWMark != 0 {
			continue
		}
		svc := netip.AddrPortFrom(s.Addr, s.Port).String()
		for _, d := range s.Dests {
			k := svc + " " + netip.AddrPortFrom(d.Addr, d.Port).String()
			seen[k] = true
			ev := w.events[k]
			if n := len(ev); n == 0 || !ev[n-1].present || ev[n-1].weight != d.Weight {
				w.events[k] = append(ev, weightEvent{at: at, weight: d.Weight, present: true})
			}
		}
	}
	for k, ev := range w.events {
		if n := len(ev); !seen[k] && ev[n-1].present {
			w.events[k] = append(ev, weightEvent{at: at})
		}
	}
}

// current returns the last weight seen of dest and whether it is present.
func (w *weightWatch) current(dest string) (int32, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ev := w.events[dest]
	if len(ev) == 0 {
		return 0, false
	}
	return ev[len(ev)-1].weight, ev[len(ev)-1].present
}

// waitWeight waits until cond holds for dest's weight and returns when
// the watch first saw it.
func (w *weightWatch) waitWeight(t *testing.T, dest string, timeout time.Duration, what string, cond func(weight int32, present bool) bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		ev := w.events[dest]
		var at time.Time
		if n := len(ev); n > 0 && cond(ev[n-1].weight, ev[n-1].present) {
			at = ev[n-1].at
		}
		w.mu.Unlock()
		if !at.IsZero() {
			return at
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not seen within %s; history %+v", dest, what, timeout, w.history(dest))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *weightWatch) history(dest string) []weightEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]weightEvent(nil), w.events[dest]...)
}

// since returns the events of dest at or after from.
func (w *weightWatch) since(dest string, from time.Time) []weightEvent {
	var out []weightEvent
	for _, e := range w.history(dest) {
		if !e.at.Before(from) {
			out = append(out, e)
		}
	}
	return out
}

func weightIs(want int32) func(int32, bool) bool {
	return func(w int32, present bool) bool { return present && w == want }
}
