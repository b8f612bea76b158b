//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

const demoDirector = `director:
  resync_interval: 5s
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
    real_servers:
      - {address: 10.0.0.11, port: 80, weight: %[2]d}
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
listen:
  metrics: 127.0.0.1:9723
  control: %[1]s/%[2]s.sock
`

// TestDemo is what `make lab` shows: a client, a director and three real
// servers, all running lvs-node, with traffic through the VIP. It is also
// part of the suite, so the demo cannot rot.
func TestDemo(t *testing.T) {
	demo := os.Getenv("LVS_DEMO") == "1"
	say := func(format string, args ...any) {
		if demo {
			fmt.Printf(format+"\n", args...)
		} else {
			t.Logf(format, args...)
		}
	}
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
	for i := 1; i <= 3; i++ {
		rss = append(rss, l.Host(fmt.Sprintf("rs%d", i), topo.On(lan, fmt.Sprintf("10.0.0.1%d", i))))
	}
	say("\n== lvs-node lab: client 10.0.0.2, director 10.0.0.1, real servers 10.0.0.11-13 on one bridge ==")
	say("   VIP 10.0.0.100:80, direct routing (DR), weighted round robin 100:100:200\n")

	for _, rs := range rss {
		cfg := write(rs.Name+".yaml", fmt.Sprintf(demoRealserver, dir, rs.Name))
		p := rs.Start(t, "lvs-node", "realserver", "--config", cfg)
		if !p.WaitOutput("real server ready", 20*time.Second) {
			t.Fatalf("lvs-node realserver on %s did not report applying:\n%s", rs.Name, p.Output())
		}
		rs.ServeName(t, 80)
	}
	say("== lvs-node realserver on rs1 (the same on rs2 and rs3) ==")
	say("%s", indent(rss[0].MustRun(t, "ip", "-4", "addr", "show", "dev", "lo")))
	say("   arp_ignore(all)=%s arp_announce(all)=%s\n",
		rss[0].ReadSysctl(t, "net/ipv4/conf/all/arp_ignore"), rss[0].ReadSysctl(t, "net/ipv4/conf/all/arp_announce"))

	modprobe(t, "ip_vs")
	dcfg := write("director.yaml", fmt.Sprintf(demoDirector, dir, 100))
	dp := director.Start(t, "lvs-node", "director", "--config", dcfg)
	waitFor(t, 30*time.Second, "the director to program the VIP", func() bool {
		out, err := director.Run(t, "ipvsadm", "-Ln")
		return err == nil && strings.Count(out, "-> 10.0.0.1") == 3
	})
	say("== lvs-node ipvs list on the director ==")
	say("%s", indent(director.MustRun(t, "lvs-node", "ipvs", "list")))

	counts := demoTraffic(t, client, 12, say)
	if counts["rs1"] == 0 || counts["rs2"] == 0 || counts["rs3"] != counts["rs1"]+counts["rs2"] {
		t.Fatalf("12 requests with weights 100:100:200 answered %v", counts)
	}

	say("\n== reload: rs1's weight 100 -> 0 (drain), SIGHUP-free: lvs-node director reload ==")
	write("director.yaml", fmt.Sprintf(demoDirector, dir, 0))
	director.MustRun(t, "lvs-node", "director", "reload", "--config", dcfg)
	waitFor(t, 20*time.Second, "the new weight", func() bool {
		out, _ := director.Run(t, "ipvsadm", "-Ln")
		return strings.Contains(out, "10.0.0.11:80                 Route   0")
	})
	say("%s", indent(director.MustRun(t, "lvs-node", "ipvs", "list")))
	counts = demoTraffic(t, client, 6, say)
	if counts["rs1"] != 0 {
		t.Fatalf("a drained real server still got new connections: %v", counts)
	}
	if dp.Exited() {
		t.Fatalf("director exited:\n%s", dp.Output())
	}
	say("\n== done: every request went through the VIP; stopping lvs-node restores the real servers ==")
}

func demoTraffic(t *testing.T, client *topo.Host, n int, say func(string, ...any)) map[string]int {
	t.Helper()
	counts := map[string]int{}
	var line []string
	for i := 0; i < n; i++ {
		got, err := client.Get("10.0.0.100:80", 5*time.Second)
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
