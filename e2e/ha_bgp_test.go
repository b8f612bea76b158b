//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/director/announce"
	"github.com/lvs-node/lvs-node/lab/topo"
)

const bgpVIP = "192.0.2.10"

// bgpDirector is one active-active director: lvs-node's director daemon
// (run in this process, inside the director's namespace, so that the test
// can give its engine health verdicts) beside a BIRD that announces its
// VIPs to the router.
type bgpDirector struct {
	h        *topo.Host
	addr     string
	dir, cfg string
	sock     string // BIRD's control socket
	bird     *topo.Proc
	engine   *director.Engine
	stopLVS  func()
}

func newBGPDirector(t *testing.T, l *topo.Lab, back *topo.Net, name, addr string) *bgpDirector {
	t.Helper()
	d := &bgpDirector{h: l.Host(name, topo.On(back, addr)), addr: addr, dir: t.TempDir()}
	d.h.MustRun(t, "ip", "route", "add", "default", "via", "10.2.0.1")
	d.sock = filepath.Join(d.dir, "bird.ctl")
	include := haWrite(t, d.dir, "vips.conf", string(announce.Render(nil)))
	conf := haWrite(t, d.dir, "bird.conf", fmt.Sprintf(`router id %[1]s;
protocol device { scan time 1; }
protocol bfd { interface "eth0" { interval 200 ms; multiplier 5; }; }
include "%[2]s";
protocol bgp upstream {
  local %[1]s as 65001;
  neighbor 10.2.0.1 as 65000;
  hold time 3; keepalive time 1; connect retry time 1;
  bfd on;
  ipv4 { import none; export where proto = "%[3]s"; next hop self; };
}
`, addr, include, announce.Proto4))
	d.cfg = haWrite(t, d.dir, "director.yaml", fmt.Sprintf(`director: {state_dir: %s, resync_interval: 5s, sysctls: {sloppy_tcp: true}}
listen: {metrics: "", control: %s}
virtual_services:
  - name: web
    vip: %s
    port: 80
    scheduler: mh
    scheduler_flags: [mh-port]
    bind_vip: true
    real_servers: [{address: 10.2.0.21}, {address: 10.2.0.22}, {address: 10.2.0.23}]
sync_daemon: {interface: eth0, sync_id: 9}
announce:
  bird: {include_file: %s, socket: %s, birdc: /usr/sbin/birdc, timeout: 5s}
  min_up: 1
`, filepath.Join(d.dir, "state"), filepath.Join(d.dir, "control.sock"), bgpVIP, include, d.sock))
	d.bird = d.h.Start(t, "bird", "-f", "-c", conf, "-s", d.sock, "-P", filepath.Join(d.dir, "bird.pid"))
	return d
}

// startLVS runs the director daemon in this process with its kernel
// handles opened inside the director's namespace.
func (d *bgpDirector) startLVS(t *testing.T) {
	t.Helper()
	cfg, _, err := director.LoadConfig(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("director", d.h.Name)
	var closeFn func() error
	if err := d.h.Do(func() error {
		var err error
		d.engine, closeFn, err = director.OpenSystem(cfg, log)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	daemon := &director.Daemon{Path: d.cfg, Engine: d.engine, Log: log}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := daemon.Run(ctx, cfg); err != nil {
			t.Errorf("%s: director: %v", d.h.Name, err)
		}
	}()
	var once sync.Once
	d.stopLVS = func() { once.Do(func() { cancel(); <-done; closeFn() }) }
	t.Cleanup(d.stopLVS)
	haWait(t, d.h.Name+" in sync", 60*time.Second, func() bool { return d.engine.Ready() == nil })
}

// setHealth gives every real server of the director's service the health
// state s, as the health checker would.
func (d *bgpDirector) setHealth(t *testing.T, s director.HealthState) {
	t.Helper()
	ch := map[director.ServerRef]director.Health{}
	for _, a := range []string{"10.2.0.21", "10.2.0.22", "10.2.0.23"} {
		ch[director.ServerRef{Service: "web", Addr: netip.MustParseAddr(a), Port: 80}] = director.Health{State: s, Reason: "lab"}
	}
	if _, err := d.engine.SetHealth(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
}

// conns is the number of connections the director's IPVS service has
// scheduled so far.
func (d *bgpDirector) conns(t *testing.T) int {
	t.Helper()
	out := d.h.MustRun(t, "ipvsadm", "-Ln", "--stats", "--exact", "-t", bgpVIP+":80")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "TCP" && f[1] == bgpVIP+":80" {
			n, err := strconv.Atoi(f[2])
			if err != nil {
				t.Fatalf("conns in %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no service in:\n%s", out)
	return 0
}

// nexthops returns the router's next hops towards the VIP, as the kernel
// forwards.
func nexthops(t *testing.T, router *topo.Host) []string {
	out, _ := router.Run(t, "/sbin/ip", "-4", "route", "show", bgpVIP) // iproute2: busybox's ip hides next hops
	var hops []string
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "10.2.0.1") && f != "10.2.0.1" {
			hops = append(hops, f)
		}
	}
	return hops
}

// flows opens one short connection from each local port to the VIP and
// returns the real server that answered each.
func flows(t *testing.T, client *topo.Host, ports []int) map[int]string {
	t.Helper()
	out := make(map[int]string, len(ports))
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, len(ports))
	for range 16 {
		wg.Go(func() {
			for p := range work {
				name, err := oneFlow(client, p)
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				out[p] = name
				mu.Unlock()
			}
		})
	}
	for _, p := range ports {
		work <- p
	}
	close(work)
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n < 5 {
			t.Errorf("flow: %v", err)
		}
		n++
	}
	if n > 0 {
		t.Fatalf("%d of %d flows failed", n, len(ports))
	}
	return out
}

func oneFlow(client *topo.Host, port int) (string, error) {
	var lastErr error
	for try := 0; try < 3; try++ {
		c, err := client.DialFrom("tcp", fmt.Sprintf("10.1.0.100:%d", port), bgpVIP+":80", 5*time.Second)
		if err != nil {
			lastErr = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = fmt.Fprintf(c, "flow %d\n", port)
		var line string
		if err == nil {
			line, err = bufio.NewReader(c).ReadString('\n')
		}
		// A reset, not a FIN: neither end keeps the port in TIME_WAIT,
		// so the next phase opens the same flow again.
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
		if err != nil {
			lastErr = fmt.Errorf("port %d: %w", port, err)
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		return name, nil
	}
	return "", lastErr
}

func mismatches(a, b map[int]string) int {
	n := 0
	for p, s := range a {
		if b[p] != s {
			n++
		}
	}
	return n
}

// TestHABGPActiveActive: a router running BIRD learns the VIP over BGP
// (with BFD) from two directors, each running lvs-node beside its own
// BIRD with the mh scheduler, and spreads flows over them by ECMP. Every
// flow reaches the same real server whichever director carries it; a
// director whose real servers all fail health checks withdraws its route
// and gets no new flow; after a director stops, every flow, new or
// established, keeps its real server.
func TestHABGPActiveActive(t *testing.T) {
	modprobe(t, "ip_vs", "ip_vs_mh")
	l := topo.New(t)
	front := l.Net("front", "10.1.0.0/24")
	back := l.Net("back", "10.2.0.0/24")
	client := l.Host("client", topo.On(front, "10.1.0.100"))
	client.MustRun(t, "ip", "route", "add", "default", "via", "10.1.0.1")
	router := l.Host("router", topo.On(front, "10.1.0.1"), topo.On(back, "10.2.0.1"))
	router.Sysctl(t, "net/ipv4/ip_forward", "1")
	router.Sysctl(t, "net/ipv4/fib_multipath_hash_policy", "1") // by ports too: flows of one client spread
	for i := range 3 {
		rs := l.Host(fmt.Sprintf("rs%d", i+1), topo.On(back, fmt.Sprintf("10.2.0.%d", 21+i)))
		rs.MustRun(t, "ip", "route", "add", "default", "via", "10.2.0.1")
		drRealServer(t, rs, bgpVIP)
		nameEchoServer(t, rs, 80)
	}
	rdir := t.TempDir()
	rconf := haWrite(t, rdir, "bird.conf", `router id 10.2.0.1;
protocol device { scan time 1; }
protocol kernel { ipv4 { import none; export all; }; merge paths on; }
protocol bfd { interface "eth1" { interval 200 ms; multiplier 5; }; }
template bgp director {
  local 10.2.0.1 as 65000;
  hold time 3; keepalive time 1; connect retry time 1;
  bfd on;
  ipv4 { import all; export none; };
}
protocol bgp dir1 from director { neighbor 10.2.0.11 as 65001; }
protocol bgp dir2 from director { neighbor 10.2.0.12 as 65001; }
`)
	router.Start(t, "bird", "-f", "-c", rconf, "-s", filepath.Join(rdir, "bird.ctl"), "-P", filepath.Join(rdir, "bird.pid"))
	// BFD at 200 ms x 5: the emulated VM shares two cores with other
	// work, and a detection time below a second flaps there.
	d1 := newBGPDirector(t, l, back, "dir1", "10.2.0.11")
	d2 := newBGPDirector(t, l, back, "dir2", "10.2.0.12")
	d1.startLVS(t)
	d2.startLVS(t)
	rsock := filepath.Join(rdir, "bird.ctl")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := router.Run(t, "birdc", "-s", rsock, "show", "protocols", "all")
			rt, _ := router.Run(t, "birdc", "-s", rsock, "show", "route", "all")
			bfd, _ := router.Run(t, "birdc", "-s", rsock, "show", "bfd", "sessions")
			kr, err := router.Run(t, "/sbin/ip", "-4", "route", "show", "table", "all")
			t.Logf("router's BIRD:\n%s\n%s\n%s\nkernel routes (%v):\n%s\nnext hops %v", out, rt, bfd, err, kr, nexthops(t, router))
		}
	})
	took := haWait(t, "two next hops on the router", 60*time.Second, func() bool { return len(nexthops(t, router)) == 2 })
	t.Logf("router has both routes %v after the directors were in sync: %s", took, router.MustRun(t, "/sbin/ip", "route", "show", bgpVIP))

	ports := make([]int, 1000)
	for i := range ports {
		ports[i] = 20000 + i
	}
	// A: both directors carry flows.
	c1, c2 := d1.conns(t), d2.conns(t)
	a := flows(t, client, ports)
	// The kernel folds its per-CPU counters into the totals every 2 s.
	var n1, n2 int
	countedBoth := func() bool {
		n1, n2 = d1.conns(t)-c1, d2.conns(t)-c2
		return n1+n2 >= len(ports)
	}
	haWait(t, "the directors' counters", 10*time.Second, countedBoth)
	t.Logf("MEASURED both directors: dir1 carried %d flows, dir2 %d", n1, n2)
	if n1+n2 != len(ports) || n1 == 0 || n2 == 0 {
		t.Fatalf("ECMP: dir1 %d + dir2 %d flows, want both above 0 and %d in all", n1, n2, len(ports))
	}
	perRS := map[string]int{}
	for _, s := range a {
		perRS[s]++
	}
	t.Logf("flows per real server: %v", perRS)

	// Long-lived connections across both directors.
	var long []*longConn
	for i := range 40 {
		long = append(long, startLongConn(t, client, fmt.Sprintf("10.1.0.100:%d", 30000+i), bgpVIP+":80", 200*time.Millisecond))
	}
	for _, lc := range long {
		lc.waitExchanges(t, 3, 30*time.Second)
	}
	time.Sleep(3 * time.Second) // the sync daemons copy the entries to the peer

	// C: dir2's real servers fail their health checks: its route goes.
	start := time.Now()
	d2.setHealth(t, director.Down)
	withdraw := haWait(t, "dir2's route withdrawn", 10*time.Second, func() bool {
		h := nexthops(t, router)
		return len(h) == 1 && h[0] == "10.2.0.11"
	})
	t.Logf("MEASURED withdrawal: the router dropped dir2's route %v after its real servers went down (%v since the call)", withdraw, time.Since(start))
	c1, c2 = d1.conns(t), d2.conns(t)
	c := flows(t, client, ports)
	time.Sleep(3 * time.Second) // the kernel folds its per-CPU counters every 2 s
	got1, got2 := d1.conns(t)-c1, d2.conns(t)-c2
	t.Logf("MEASURED after the withdrawal: dir1 scheduled %d new connections, dir2 %d", got1, got2)
	if got2 != 0 || got1 == 0 {
		t.Errorf("%d new flows went to the withdrawn director (dir1 %d)", got2, got1)
	}
	mc := mismatches(a, c)
	t.Logf("MEASURED dir1 alone: %d of %d flows mismatched against both directors", mc, len(ports))
	if mc != 0 {
		t.Errorf("%d flows changed real server when dir1 carried them all", mc)
	}
	d2.setHealth(t, director.Up)
	haWait(t, "dir2's route back", 10*time.Second, func() bool { return len(nexthops(t, router)) == 2 })

	// E: dir1 stops answering (its BIRD hangs: the BGP session stays open,
	// only BFD notices), then its lvs-node stops.
	snap := map[*longConn]string{}
	for _, lc := range long {
		_, _, s, err := lc.state()
		if err != nil || len(s) != 1 {
			t.Fatalf("long-lived connection before the stop: %v, servers %v", err, s)
		}
		for k := range s {
			snap[lc] = k
		}
	}
	if err := d1.bird.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d1.bird.Signal(os.Kill) })
	gone := haWait(t, "dir1's route gone", 10*time.Second, func() bool {
		h := nexthops(t, router)
		return len(h) == 1 && h[0] == "10.2.0.12"
	})
	t.Logf("MEASURED director stop: the router dropped dir1's route %v after its BIRD hung (BFD 5 x 200 ms; BGP hold time 3 s)", gone)
	d1.stopLVS()
	e := flows(t, client, ports)
	me := mismatches(a, e)
	mce := mismatches(c, e)
	t.Logf("MEASURED dir2 alone after dir1 stopped: %d of %d flows mismatched (%d against dir1 alone)", me, len(ports), mce)
	if me != 0 || mce != 0 {
		t.Errorf("%d flows changed real server after dir1 stopped (%d against dir1 alone)", me, mce)
	}
	// Established connections, those dir1 carried included, go on
	// through dir2 with their real server.
	for _, lc := range long {
		n, _, _, _ := lc.state()
		lc.waitExchanges(t, n+3, 30*time.Second)
	}
	moved := 0
	maxGap := time.Duration(0)
	for _, lc := range long {
		_, gap, s, err := lc.state()
		if err != nil || len(s) != 1 || s[snap[lc]] == 0 {
			moved++
			t.Errorf("long-lived connection: %v, servers %v, was on %s", err, s, snap[lc])
		}
		maxGap = max(maxGap, gap)
	}
	t.Logf("MEASURED %d long-lived connections: %d changed real server, longest silence %v", len(long), moved, maxGap)
}
