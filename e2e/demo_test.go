//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

const demoDirector = `director:
  resync_interval: 5s
  sysctls: {expire_nodest_conn: true}
  state_dir: %[1]s/director
listen:
  metrics: 127.0.0.1:9722
  control: %[1]s/director.sock
virtual_services:
  - name: web
    vip: 10.0.0.100
    protocol: tcp
    port: 80
    scheduler: wrr
    forwarding: dr
    bind_vip: true
    health_check: {type: http, path: /health, interval: 500ms, timeout: 450ms, rise: 2, fall: 2}
    feedback: {interval: 500ms, port: 3262}
    real_servers:
      - {address: 10.0.0.11, port: 80, weight: 100}
      - {address: 10.0.0.12, port: 80, weight: 100}
      - {address: 10.0.0.13, port: 80, weight: 200}
`

const demoRealserver = `realserver:
  state_dir: %[1]s/%[2]s
  vips:
    - {address: 10.0.0.100, mode: dr}
  arp: {ignore: 1, announce: 2}
  watch_interval: 1s
  restore_on_exit: true
  agent: {listen: "0.0.0.0:3262"}
  load:
    interval: 200ms
    sources: [{type: file, path: %[1]s/%[2]s.capacity}]
listen:
  metrics: 127.0.0.1:9723
  control: %[1]s/%[2]s.sock
`

// TestDemo is what ` + "`make lab`" + ` shows: a client, a director and three real
// servers, all running lvs-node, with traffic through the VIP; a real
// server failing its health check and coming back; a real server's load
// rising and its weight following; lvs-node status; then full-NAT with
// TOA, where an application on a real server with no route to the client
// still sees the client's address; two directors with keepalived's VRRP,
// a connection surviving the master's stop; and a keepalived.conf and an
// ipvsadm script imported and programmed. It is also part of the suite,
// so the demo cannot rot.
func TestDemo(t *testing.T) {
	demo := os.Getenv("LVS_DEMO") == "1"
	say := func(format string, args ...any) {
		if demo {
			fmt.Printf(format+"\n", args...)
		} else {
			t.Logf(format, args...)
		}
	}
	// Each part runs in a lab of its own, torn down before the next.
	if !t.Run("direct routing", func(t *testing.T) { demoDR(t, say) }) {
		return
	}
	if !t.Run("full-NAT", func(t *testing.T) { demoFullNAT(t, say) }) {
		return
	}
	if !t.Run("high availability", func(t *testing.T) { demoHA(t, say) }) {
		return
	}
	if !t.Run("migration", func(t *testing.T) { demoImport(t, say) }) {
		return
	}
	say("\n== done: every request went through the VIPs; stopping lvs-node restores the real servers ==")
}

// demoDR is the direct-routing part of the demo: health checks, load
// feedback and status.
func demoDR(t *testing.T, say func(string, ...any)) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	l := topo.New(t)
	lan := l.Net("lan", "10.0.0.0/24")
	client := l.Host("client", topo.On(lan, "10.0.0.2"))
	director := l.Host("director", topo.On(lan, "10.0.0.1"))
	var rss []*topo.Host
	webs := map[string]*webServer{}
	for i := 1; i <= 3; i++ {
		rss = append(rss, l.Host(fmt.Sprintf("rs%d", i), topo.On(lan, fmt.Sprintf("10.0.0.1%d", i))))
	}
	say("\n== lvs-node lab: client 10.0.0.2, director 10.0.0.1, real servers 10.0.0.11-13 on one bridge ==")
	say("   VIP 10.0.0.100:80, direct routing (DR), weighted round robin 100:100:200, HTTP health checks, load feedback\n")

	for _, rs := range rss {
		write(rs.Name+".capacity", "100\n")
		cfg := write(rs.Name+".yaml", fmt.Sprintf(demoRealserver, dir, rs.Name))
		p := rs.Start(t, "lvs-node", "realserver", "--config", cfg)
		if !p.WaitOutput("real server ready", 20*time.Second) {
			t.Fatalf("lvs-node realserver on %s did not report applying:\n%s", rs.Name, p.Output())
		}
		webs[rs.Name] = serveWeb(t, rs, 80)
	}
	say("== lvs-node realserver on rs1 (the same on rs2 and rs3): the VIP on lo, ARP for it suppressed, a load agent ==")
	say("%s", indent(rss[0].MustRun(t, "ip", "-4", "addr", "show", "dev", "lo")))
	say("   arp_ignore(all)=%s arp_announce(all)=%s\n",
		rss[0].ReadSysctl(t, "net/ipv4/conf/all/arp_ignore"), rss[0].ReadSysctl(t, "net/ipv4/conf/all/arp_announce"))

	modprobe(t, "ip_vs")
	dcfg := write("director.yaml", fmt.Sprintf(demoDirector, dir))
	dp := director.Start(t, "lvs-node", "director", "--config", dcfg)
	table := func() string { out, _ := director.Run(t, "ipvsadm", "-Ln"); return out }
	waitFor(t, 30*time.Second, "every real server to pass its checks", func() bool {
		return strings.Count(table(), "Route   100") == 2 && strings.Contains(table(), "Route   200")
	})
	say("== lvs-node ipvs list on the director: every real server passed its checks ==")
	say("%s", indent(director.MustRun(t, "lvs-node", "ipvs", "list")))
	counts := demoTraffic(t, client, 8, say)
	if counts["rs1"] == 0 || counts["rs2"] == 0 || counts["rs3"] != counts["rs1"]+counts["rs2"] {
		t.Fatalf("8 requests with weights 100:100:200 answered %v", counts)
	}

	say("\n== rs2's web server stops: its health check fails twice and the director quiesces it (weight 0) ==")
	webs["rs2"].stop()
	stopped := time.Now()
	waitFor(t, 10*time.Second, "rs2 quiesced", func() bool { return strings.Contains(table(), "10.0.0.12:80                 Route   0") })
	say("   quiesced %v after the stop", time.Since(stopped).Round(100*time.Millisecond))
	say("%s", indent(director.MustRun(t, "lvs-node", "ipvs", "list")))
	if counts := demoTraffic(t, client, 6, say); counts["rs2"] != 0 {
		t.Fatalf("a failed real server got new connections: %v", counts)
	}
	say("\n== rs2's web server starts again: back after two passing checks ==")
	webs["rs2"].start()
	waitFor(t, 10*time.Second, "rs2 back", func() bool { return strings.Contains(table(), "10.0.0.12:80                 Route   100") })
	say("%s", indent(director.MustRun(t, "lvs-node", "ipvs", "list")))

	say("\n== rs3 gets busy: its load source now reports 25%% capacity, and its weight follows ==")
	write("rs3.capacity", "25\n")
	busy := time.Now()
	waitFor(t, 10*time.Second, "rs3's weight to follow", func() bool { return strings.Contains(table(), "10.0.0.13:80                 Route   50") })
	say("   weight 200 -> 50 in %v (polls every 500ms)", time.Since(busy).Round(100*time.Millisecond))
	say("%s", indent(director.MustRun(t, "lvs-node", "ipvs", "list")))

	say("\n== lvs-node status on the director ==")
	st := director.MustRun(t, "lvs-node", "status", "--role", "director", "--config", dcfg)
	say("%s", indent(st))
	if !strings.Contains(st, "200 -> 50") || !strings.Contains(st, "capacity 25%") {
		t.Fatalf("status does not show rs3's weight and why:\n%s", st)
	}
	if dp.Exited() {
		t.Fatalf("director exited:\n%s", dp.Output())
	}
}

// demoFullNAT shows full-NAT with TOA: real servers on another subnet,
// with no route to the client, whose unmodified application still sees
// the client's address, while their kernel's table shows the director's.
func demoFullNAT(t *testing.T, say func(string, ...any)) {
	t.Helper()
	f := newFullNATLab(t)
	say("\n== full-NAT with TOA: client 198.51.100.10-11, director with local addresses 10.1.0.2-3, real servers 10.1.0.11-12 ==")
	say("   the real servers have no route to the client; lvs-node realserver runs eBPF TOA trusting the director's local addresses")
	out := f.dir.MustRun(t, "lvs-node", "check", "--config", f.cfgPath)
	say("%s", indent(out))
	f.start(t)
	say("%s", indent(f.dir.MustRun(t, "lvs-node", "ipvs", "list")))
	for _, a := range fnClients4[:2] {
		cc, err := dialReport(f.client, a+":0", fnVIP4+":80")
		if err != nil {
			t.Fatal(err)
		}
		rs := map[string]*topo.Host{"rs1": f.rs1, "rs2": f.rs2}[cc.Report.RS]
		if rs == nil {
			t.Fatalf("report from an unknown real server %q", cc.Report.RS)
		}
		kc, ok := kernelConns(t, rs)[cc.Report.Inode]
		if !ok {
			t.Fatalf("%s: no connection with inode %d in the kernel's table", rs.Name, cc.Report.Inode)
		}
		say("   client %s: the application on %s got accept() %s, getpeername() %s; its kernel's table shows %s",
			cc.Local, rs.Name, cc.Report.Accept, cc.Report.Getpeername, kc.Remote)
		if unmapped(cc.Report.Getpeername) != cc.Local || unmapped(cc.Report.Accept) != cc.Local || !slices.Contains(fnLocal, kc.Remote.Addr().Unmap().String()) {
			t.Fatalf("client %s: the application saw %s / %s, the kernel %s", cc.Local, cc.Report.Accept, cc.Report.Getpeername, kc.Remote)
		}
		closeAll([]*clientConn{cc})
	}
	say("   TOA counters of rs1:")
	say("%s", indent(f.rs1.MustRun(t, "lvs-node", "toa", "stats")))
}

func demoTraffic(t *testing.T, client *topo.Host, n int, say func(string, ...any)) map[string]int {
	t.Helper()
	counts := map[string]int{}
	var line []string
	for i := 0; i < n; i++ {
		got, err := httpGet(client, "10.0.0.100:80", 5*time.Second)
		if err != nil {
			t.Fatalf("request %d to the VIP: %v", i+1, err)
		}
		counts[got]++
		line = append(line, got)
	}
	say("== %d requests from the client to 10.0.0.100:80 ==", n)
	say("   answered by: %s", strings.Join(line, " "))
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	say("   per real server: %s", strings.Join(parts, " "))
	return counts
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "   " + l
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
