//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// TestSyncDaemonMatchesIpvsadm: what lvs-node ipvs sync starts is what
// ipvsadm --list --daemon reads back, and lvs-node ipvs sync status prints
// the same bytes, for daemons started by either tool.
func TestSyncDaemonMatchesIpvsadm(t *testing.T) {
	modprobe(t, "ip_vs")
	l := topo.New(t)
	n := l.Net("lan", "10.0.0.0/24")
	h := l.Host("dir", topo.On(n, "10.0.0.1"), topo.On(n, "10.0.0.2"))
	h.Sysctl(t, "net/ipv6/conf/eth0/disable_ipv6", "0")
	same := func(when string) string {
		t.Helper()
		ours := h.MustRun(t, "lvs-node", "ipvs", "sync", "status")
		theirs := h.MustRun(t, "ipvsadm", "--list", "--daemon")
		if ours != theirs {
			t.Fatalf("%s: lvs-node ipvs sync status:\n%q\nipvsadm --list --daemon:\n%q", when, ours, theirs)
		}
		return ours
	}
	if out := same("no daemon"); out != "" {
		t.Fatalf("no daemon, yet %q", out)
	}
	h.MustRun(t, "lvs-node", "ipvs", "sync", "start", "master", "--mcast-interface", "eth0", "--syncid", "5")
	h.MustRun(t, "lvs-node", "ipvs", "sync", "start", "backup", "--mcast-interface", "eth1", "--syncid", "200",
		"--mcast-group", "239.1.2.3", "--mcast-port", "9000", "--mcast-ttl", "3", "--sync-maxlen", "1200")
	out := same("both started by lvs-node")
	t.Logf("status:\n%s", out)
	mustContain(t, "status", out, "master sync daemon (mcast=eth0, syncid=5, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n",
		"backup sync daemon (mcast=eth1, syncid=200, maxlen=1200, group=239.1.2.3, port=9000, ttl=3)\n")
	if _, err := h.Run(t, "lvs-node", "ipvs", "sync", "start", "master", "--mcast-interface", "eth0"); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second master: %v", err)
	}
	h.MustRun(t, "lvs-node", "ipvs", "sync", "stop")
	same("stopped")
	// Started by ipvsadm, IPv6 group: read by lvs-node.
	h.MustRun(t, "ipvsadm", "--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", "9", "--mcast-group", "ff02::81")
	mustContain(t, "status", same("ipvsadm's IPv6 daemon"), "group=ff02::81")
	if _, err := h.Run(t, "lvs-node", "ipvs", "sync", "start", "master", "--mcast-interface", "nosuch0"); err == nil || !strings.Contains(err.Error(), "no interface nosuch0") {
		t.Errorf("unknown interface: %v", err)
	}
	h.MustRun(t, "lvs-node", "ipvs", "sync", "stop", "backup")
	same("all stopped")
}

// nameEchoServer answers every line of every connection with the host's name,
// on port on all addresses, until the test ends.
func nameEchoServer(t *testing.T, h *topo.Host, port int) {
	t.Helper()
	ln, err := h.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := fmt.Fprintf(c, "%s %s\n", h.Name, sc.Text()); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// longConn is a TCP connection that exchanges a line every interval and
// records the longest silence and the server that answered.
type longConn struct {
	c        net.Conn
	mu       sync.Mutex
	server   string
	servers  map[string]int
	lastOK   time.Time
	maxGap   time.Duration
	err      error
	received int
	done     chan struct{}
}

func startLongConn(t *testing.T, h *topo.Host, local, addr string, interval time.Duration) *longConn {
	t.Helper()
	var c net.Conn
	var err error
	if local == "" {
		c, err = h.Dial("tcp", addr, 5*time.Second)
	} else {
		c, err = h.DialFrom("tcp", local, addr, 5*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	lc := &longConn{c: c, servers: map[string]int{}, lastOK: time.Now(), done: make(chan struct{})}
	t.Cleanup(func() { c.Close(); <-lc.done })
	go func() {
		defer close(lc.done)
		r := bufio.NewReader(c)
		for i := 0; ; i++ {
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := fmt.Fprintf(c, "ping %d\n", i); err != nil {
				lc.fail(err)
				return
			}
			line, err := r.ReadString('\n')
			if err != nil {
				lc.fail(err)
				return
			}
			name, _, _ := strings.Cut(line, " ")
			lc.mu.Lock()
			now := time.Now()
			if g := now.Sub(lc.lastOK); g > lc.maxGap {
				lc.maxGap = g
			}
			lc.lastOK = now
			lc.server = name
			lc.servers[name]++
			lc.received++
			lc.mu.Unlock()
			time.Sleep(interval)
		}
	}()
	return lc
}

func (lc *longConn) fail(err error) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.err == nil {
		lc.err = err
	}
}

// state returns the exchanges so far, the longest silence, the servers
// that answered and the error that ended the connection.
func (lc *longConn) state() (n int, gap time.Duration, servers map[string]int, err error) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	s := map[string]int{}
	for k, v := range lc.servers {
		s[k] = v
	}
	gap = lc.maxGap
	if g := time.Since(lc.lastOK); lc.err == nil && g > gap {
		gap = g
	}
	return lc.received, gap, s, lc.err
}

// waitExchanges waits until the connection made more exchanges than n.
func (lc *longConn) waitExchanges(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, _, _, err := lc.state()
		if err != nil {
			t.Fatalf("long-lived connection ended: %v", err)
		}
		if got > n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("long-lived connection stuck at %d exchanges", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func haWrite(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// haWait polls cond every 20 ms until it holds or timeout passes, and
// returns how long it took.
func haWait(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}
