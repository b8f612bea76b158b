//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// directorLab is a director between a client network and a back network:
//
//	client 10.0.0.2, client2 10.0.0.3 --- lan 10.0.0.0/24 --- dir 10.0.0.1 / 10.2.0.1 --- back 10.2.0.0/24
//	rs1 10.0.0.11, rs2 10.0.0.12 on lan (DR and TUN)       rs3 10.2.0.13, rs4 10.2.0.14 on back (NAT)
type directorLab struct {
	l                  *topo.Lab
	lan, back          *topo.Net
	client, client2    *topo.Host
	dir                *topo.Host
	rs1, rs2, rs3, rs4 *topo.Host
	tmp, cfgPath, sock string
	// included: writeConfig puts every virtual service in a file of its
	// own under services.d, which director.yaml includes.
	included bool
	// settings: more lines of the director block (indented), such as
	// sysctls.
	settings string
}

func newDirectorLab(t *testing.T) *directorLab {
	t.Helper()
	modprobe(t, "ip_vs", "ipip")
	l := topo.New(t)
	d := &directorLab{l: l, lan: l.Net("lan", "10.0.0.0/24"), back: l.Net("back", "10.2.0.0/24")}
	d.client = l.Host("client", topo.On(d.lan, "10.0.0.2"))
	d.client2 = l.Host("client2", topo.On(d.lan, "10.0.0.3"))
	d.dir = l.Host("dir", topo.On(d.lan, "10.0.0.1"), topo.On(d.back, "10.2.0.1"))
	d.rs1 = l.Host("rs1", topo.On(d.lan, "10.0.0.11"))
	d.rs2 = l.Host("rs2", topo.On(d.lan, "10.0.0.12"))
	d.rs3 = l.Host("rs3", topo.On(d.back, "10.2.0.13"))
	d.rs4 = l.Host("rs4", topo.On(d.back, "10.2.0.14"))
	d.tmp = t.TempDir()
	d.cfgPath = filepath.Join(d.tmp, "director.yaml")
	d.sock = filepath.Join(d.tmp, "d.sock")
	return d
}

// drRealServer prepares h by hand for direct routing: the VIPs on lo and
// no ARP answers for them.
func drRealServer(t *testing.T, h *topo.Host, vips ...string) {
	t.Helper()
	for _, k := range []string{"all", "eth0"} {
		h.Sysctl(t, "net/ipv4/conf/"+k+"/arp_ignore", "1")
		h.Sysctl(t, "net/ipv4/conf/"+k+"/arp_announce", "2")
	}
	for _, v := range vips {
		h.MustRun(t, "ip", "addr", "add", v+"/32", "dev", "lo")
	}
}

// tunRealServer prepares h by hand for IPIP: tunl0 up with the VIPs and
// no reverse-path filter.
func tunRealServer(t *testing.T, h *topo.Host, vips ...string) {
	t.Helper()
	h.MustRun(t, "ip", "link", "set", "tunl0", "up")
	for _, k := range []string{"all", "default", "eth0", "tunl0"} {
		h.Sysctl(t, "net/ipv4/conf/"+k+"/rp_filter", "0")
	}
	for _, v := range vips {
		h.MustRun(t, "ip", "addr", "add", v+"/32", "dev", "tunl0")
	}
}

// natRealServer routes h's replies through the director.
func natRealServer(t *testing.T, h *topo.Host) {
	t.Helper()
	h.MustRun(t, "ip", "route", "add", "default", "via", "10.2.0.1")
}

func (d *directorLab) writeConfig(t *testing.T, services string) {
	t.Helper()
	head := fmt.Sprintf(`director:
  state_dir: %s
  resync_interval: 1s
%slisten:
  metrics: 127.0.0.1:9722
  control: %s
`, filepath.Join(d.tmp, "state"), d.settings, d.sock)
	if !d.included {
		if err := os.WriteFile(d.cfgPath, []byte(head+"virtual_services:\n"+services), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	dir := filepath.Join(d.tmp, "services.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := includedFiles(services)
	old, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range old {
		if _, keep := files[filepath.Base(f)]; !keep {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if cur, err := os.ReadFile(p); err == nil && string(cur) == text {
			continue // as it was: a reload must not need to read it
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(d.cfgPath, []byte(head+"include: [services.d/*.yaml]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// includedFiles splits the entries of a virtual_services list (indented
// by two) into included files, one per service, named after it.
func includedFiles(services string) map[string]string {
	out := map[string]string{}
	name, text := "", ""
	flush := func() {
		if name != "" {
			out[name+".yaml"] = text
		}
	}
	for _, line := range strings.SplitAfter(services, "\n") {
		if line == "" {
			continue
		}
		line = strings.TrimPrefix(line, "  ")
		if n, ok := strings.CutPrefix(line, "- name: "); ok {
			flush()
			name, text = strings.TrimSpace(n), ""
		}
		text += line
	}
	flush()
	return out
}

// threeKindsRealServers sets up rs1 and rs2 as DR and TUN real servers
// of 10.0.0.100 and 10.0.0.101 serving port 80, and rs3 and rs4 as NAT
// real servers serving 8080: the real servers of threeKinds.
func (d *directorLab) threeKindsRealServers(t *testing.T) {
	t.Helper()
	drRealServer(t, d.rs1, "10.0.0.100")
	drRealServer(t, d.rs2, "10.0.0.100")
	tunRealServer(t, d.rs1, "10.0.0.101")
	tunRealServer(t, d.rs2, "10.0.0.101")
	natRealServer(t, d.rs3)
	natRealServer(t, d.rs4)
	for _, h := range []*topo.Host{d.rs1, d.rs2} {
		h.ServeName(t, 80)
	}
	for _, h := range []*topo.Host{d.rs3, d.rs4} {
		h.ServeName(t, 8080)
	}
}

func (d *directorLab) start(t *testing.T) *topo.Proc {
	t.Helper()
	p := d.dir.Start(t, "lvs-node", "director", "--config", d.cfgPath)
	if !p.WaitOutput("msg=applied", 60*time.Second) {
		t.Fatalf("director did not apply:\n%s", p.Output())
	}
	return p
}

func (d *directorLab) save(t *testing.T) string {
	t.Helper()
	return d.dir.MustRun(t, "ipvsadm", "-Sn")
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// spread makes n requests to addr from h and counts the answers.
func spread(t *testing.T, h *topo.Host, addr string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for i := range n {
		got, err := h.Get(addr, 5*time.Second)
		if err != nil {
			t.Fatalf("request %d to %s from %s: %v", i, addr, h.Name, err)
		}
		seen[got]++
	}
	return seen
}

func expectBoth(t *testing.T, h *topo.Host, addr, a, b string) {
	t.Helper()
	if seen := spread(t, h, addr, 4); seen[a] != 2 || seen[b] != 2 {
		t.Fatalf("%s answered %v, want %s and %s twice each (rr)", addr, seen, a, b)
	}
}

func (d *directorLab) metrics(t *testing.T) string {
	t.Helper()
	c, err := d.dir.Dial("tcp", "127.0.0.1:9722", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func metricValue(t *testing.T, text, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("metric %s missing:\n%s", name, text)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const threeKinds = `  - name: dr
    vip: 10.0.0.100
    port: 80
    scheduler: rr
    bind_vip: true
    real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]
  - name: tun
    vip: 10.0.0.101
    port: 80
    scheduler: rr
    forwarding: tun
    bind_vip: true
    real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]
  - name: nat
    vip: 10.0.0.102
    port: 80
    scheduler: rr
    forwarding: nat
    bind_vip: true
    real_servers: [{address: 10.2.0.13, port: 8080}, {address: 10.2.0.14, port: 8080}]
`

// TestDirectorLifecycle: DR, NAT and TUN services carry TCP; a rule made
// by hand survives start, reload, a bad reload, stop and down; drift is
// repaired within the resync and counted; stop leaves the table; down
// removes only what lvs-node owns and restores ip_forward.
func TestDirectorLifecycle(t *testing.T) {
	d := newDirectorLab(t)
	d.threeKindsRealServers(t)
	if v := d.dir.ReadSysctl(t, "net/ipv4/ip_forward"); v != "0" {
		t.Fatalf("ip_forward starts at %s", v)
	}

	// An operator's own rule, made before lvs-node starts.
	d.dir.MustRun(t, "ipvsadm", "-A", "-t", "10.0.0.200:22", "-s", "rr")
	d.dir.MustRun(t, "ipvsadm", "-a", "-t", "10.0.0.200:22", "-r", "10.0.0.11:22", "-g", "-w", "3")
	hand := []string{"-A -t 10.0.0.200:22 -s rr", "-a -t 10.0.0.200:22 -r 10.0.0.11:22 -g -w 3"}

	d.writeConfig(t, threeKinds)
	// --dry-run plans without changing anything.
	plan := d.dir.MustRun(t, "lvs-node", "director", "--config", d.cfgPath, "--dry-run")
	mustContain(t, "dry run", plan, "-A -t 10.0.0.100:80 -s rr", "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1",
		"-a -t 10.0.0.101:80 -r 10.0.0.12:80 -i -w 1", "-a -t 10.0.0.102:80 -r 10.2.0.13:8080 -m -w 1")
	if s := d.save(t); strings.Contains(s, "10.0.0.100") {
		t.Fatalf("dry run changed the table:\n%s", s)
	}

	proc := d.start(t)
	table := d.save(t)
	mustContain(t, "table after start", table, append(hand,
		"-A -t 10.0.0.100:80 -s rr", "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1", "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 1",
		"-A -t 10.0.0.101:80 -s rr", "-a -t 10.0.0.101:80 -r 10.0.0.11:80 -i -w 1", "-a -t 10.0.0.101:80 -r 10.0.0.12:80 -i -w 1",
		"-A -t 10.0.0.102:80 -s rr", "-a -t 10.0.0.102:80 -r 10.2.0.13:8080 -m -w 1", "-a -t 10.0.0.102:80 -r 10.2.0.14:8080 -m -w 1")...)
	if v := d.dir.ReadSysctl(t, "net/ipv4/ip_forward"); v != "1" {
		t.Fatalf("NAT service did not turn on ip_forward: %s", v)
	}
	expectBoth(t, d.client, "10.0.0.100:80", "rs1", "rs2")
	expectBoth(t, d.client, "10.0.0.101:80", "rs1", "rs2")
	expectBoth(t, d.client, "10.0.0.102:80", "rs3", "rs4")
	// The kernel folds its per-CPU counters into what it reports every
	// 2 s; the director reads them at each resync (1 s here).
	time.Sleep(3500 * time.Millisecond)
	checkBackendConns(t, d, "dr", "10.0.0.100:80", "10.0.0.11:80")
	checkBackendConns(t, d, "nat", "10.0.0.102:80", "10.2.0.13:8080")

	// Drift by hand: a deleted real server and a changed weight.
	d.dir.MustRun(t, "ipvsadm", "-d", "-t", "10.0.0.100:80", "-r", "10.0.0.12:80")
	d.dir.MustRun(t, "ipvsadm", "-e", "-t", "10.0.0.102:80", "-r", "10.2.0.13:8080", "-m", "-w", "9")
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := d.save(t)
		if strings.Contains(s, "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 1") && strings.Contains(s, "-a -t 10.0.0.102:80 -r 10.2.0.13:8080 -m -w 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drift not repaired within 10 s (resync 1 s):\n%s\n%s", s, proc.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	m := d.metrics(t)
	if v := metricValue(t, m, "lvs_node_director_drift_repairs_total"); v < 2 {
		t.Errorf("drift_repairs_total = %v, want at least 2", v)
	}
	mustContain(t, "log", proc.Output(), "resync repaired drift")

	// Reload with a change: in place, the hand-made rule stays.
	d.writeConfig(t, strings.Replace(threeKinds, "real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]\n  - name: tun",
		"real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12, weight: 5}]\n  - name: tun", 1))
	if out := d.dir.MustRun(t, "lvs-node", "director", "reload", "--config", d.cfgPath); !strings.Contains(out, "reloaded") {
		t.Fatalf("reload said %q", out)
	}
	mustContain(t, "table after reload", d.save(t), append(hand, "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 5")...)

	// A bad reload changes nothing and says where the problem is.
	good := d.save(t)
	d.writeConfig(t, strings.Replace(threeKinds, "scheduler: rr\n    forwarding: nat", "scheduler: nope\n    forwarding: nat", 1))
	out, err := d.dir.Run(t, "lvs-node", "director", "reload", "--config", d.cfgPath)
	if err == nil {
		t.Fatalf("bad reload accepted: %s", out)
	}
	mustContain(t, "bad reload output", out, d.cfgPath+":", "unknown scheduler \"nope\"")
	// Through the socket too (bypassing the client-side check).
	out, err = d.dir.Run(t, "lvs-node", "director", "reload", "--socket", d.sock)
	if err == nil {
		t.Fatalf("bad reload accepted by the daemon: %s", out)
	}
	mustContain(t, "daemon's refusal", out, "unknown scheduler \"nope\"", "previous configuration stays in effect")
	time.Sleep(1500 * time.Millisecond) // a resync runs on the old configuration
	if s := d.save(t); s != good {
		t.Fatalf("bad reload changed the table:\n%s\nwas:\n%s", s, good)
	}
	if seen := spread(t, d.client, "10.0.0.102:80", 4); seen["rs3"]+seen["rs4"] != 4 {
		t.Fatalf("traffic after a bad reload: %v", seen)
	}

	// Stop leaves everything in place.
	if err := proc.Stop(10 * time.Second); err != nil && !strings.Contains(err.Error(), "terminated") {
		t.Logf("director exit: %v", err)
	}
	if !proc.Exited() {
		t.Fatal("director did not stop")
	}
	mustContain(t, "log", proc.Output(), "the IPVS table is left in place")
	if s := d.save(t); s != good {
		t.Fatalf("stop changed the table:\n%s\nwas:\n%s", s, good)
	}
	expectBoth(t, d.client, "10.0.0.101:80", "rs1", "rs2")

	// Down removes what lvs-node owns and nothing else.
	d.writeConfig(t, threeKinds)
	d.dir.MustRun(t, "lvs-node", "director", "down", "--config", d.cfgPath)
	s := d.save(t)
	mustContain(t, "table after down", s, hand...)
	if strings.Contains(s, "10.0.0.10") {
		t.Fatalf("down left owned services:\n%s", s)
	}
	if v := d.dir.ReadSysctl(t, "net/ipv4/ip_forward"); v != "0" {
		t.Fatalf("down did not restore ip_forward: %s", v)
	}
	if out := d.dir.MustRun(t, "ip", "-4", "addr", "show", "dev", "lo"); strings.Contains(out, "10.0.0.100") {
		t.Fatalf("down left the VIP on lo:\n%s", out)
	}
}

// TestDirectorFWMPersistence: a ports: service with persistence sends one
// client to the same real server on 80 and 443.
func TestDirectorFWMPersistence(t *testing.T) {
	d := newDirectorLab(t)
	for _, h := range []*topo.Host{d.rs1, d.rs2} {
		drRealServer(t, h, "10.0.0.103")
		h.ServeName(t, 80)
		h.ServeName(t, 443)
	}
	d.writeConfig(t, `  - name: shop
    vip: 10.0.0.103
    ports: [80, 443]
    scheduler: rr
    persistence: {timeout: 120s}
    bind_vip: true
    real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]
`)
	d.start(t)
	mustContain(t, "table", d.save(t), "-s rr -p 120", "-r 10.0.0.11:0 -g -w 1", "-r 10.0.0.12:0 -g -w 1")
	first, err := d.client.Get("10.0.0.103:80", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		port := []string{"443", "80"}[i%2]
		got, err := d.client.Get("10.0.0.103:"+port, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got != first {
			t.Fatalf("request %d to port %s went to %s, the client started on %s", i, port, got, first)
		}
	}
	// rr really alternates: the next client lands on the other server,
	// so the stickiness above is persistence, not chance.
	other, err := d.client2.Get("10.0.0.103:443", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Fatalf("second client also went to %s", first)
	}
	if got, err := d.client2.Get("10.0.0.103:80", 5*time.Second); err != nil || got != other {
		t.Fatalf("second client on port 80: %q, %v, want %s", got, err, other)
	}
}

// TestDirectorRestartDropsNothing restarts the director twice in the
// middle of a bounded stream of requests; none may fail.
func TestDirectorRestartDropsNothing(t *testing.T) {
	testDirectorRestartDropsNothing(t, false)
}

func testDirectorRestartDropsNothing(t *testing.T, included bool) {
	d := newDirectorLab(t)
	d.included = included
	for _, h := range []*topo.Host{d.rs1, d.rs2} {
		drRealServer(t, h, "10.0.0.100")
		h.ServeName(t, 80)
	}
	d.writeConfig(t, threeKinds[:strings.Index(threeKinds, "  - name: tun")])
	proc := d.start(t)

	var done, failed atomic.Int64
	var restarted atomic.Bool
	errs := make(chan error, 16)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		after := 0
		for i := 0; i < 5000; i++ {
			if _, err := d.client.Get("10.0.0.100:80", 5*time.Second); err != nil {
				failed.Add(1)
				select {
				case errs <- err:
				default:
				}
			}
			done.Add(1)
			if restarted.Load() {
				if after++; after == 50 {
					return
				}
			}
		}
	}()
	for done.Load() < 20 {
		time.Sleep(20 * time.Millisecond)
	}
	for range 2 {
		before := done.Load()
		if err := proc.Stop(10 * time.Second); !proc.Exited() {
			t.Fatalf("director did not stop: %v", err)
		}
		proc = d.start(t)
		mustContain(t, "restart log", proc.Output(), "changes=0")
		for done.Load() < before+10 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	restarted.Store(true)
	<-finished
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed across restarts; first: %v", n, done.Load(), <-errs)
	}
	t.Logf("%d requests, none failed, across 2 restarts", done.Load())
}

// checkBackendConns compares lvs_node_ipvs_backend_connections_total of
// real server rs of service svc (VIP:port) with what ipvsadm --stats
// --exact reports for it; it must have served.
func checkBackendConns(t *testing.T, d *directorLab, name, svc, rs string) {
	t.Helper()
	stats := d.dir.MustRun(t, "ipvsadm", "-Ln", "--stats", "--exact")
	want, ok := ipvsadmDestConns(stats, svc, rs)
	if !ok {
		t.Fatalf("ipvsadm --stats lacks %s of %s:\n%s", rs, svc, stats)
	}
	vip, vport, _ := strings.Cut(svc, ":")
	raddr, rport, _ := strings.Cut(rs, ":")
	m := d.metrics(t)
	got := metricValue(t, m, fmt.Sprintf(`lvs_node_ipvs_backend_connections_total{local_address="%s",local_mark="",local_port="%s",proto="TCP",remote_address="%s",remote_port="%s",service="%s"}`, vip, vport, raddr, rport, name))
	if got <= 0 || got != float64(want) {
		t.Fatalf("%s %s: lvs_node_ipvs_backend_connections_total = %v, ipvsadm --stats says %d (want equal and > 0)\n%s", name, rs, got, want, stats)
	}
	t.Logf("%s %s: %v connections in the metrics and in ipvsadm", name, rs, got)
}

// ipvsadmDestConns finds the Conns column of real server rs under service
// svc in ipvsadm -Ln --stats --exact output.
func ipvsadmDestConns(out, svc, rs string) (uint64, bool) {
	in := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "SCTP" || f[0] == "FWM"):
			in = f[1] == svc
		case in && len(f) >= 3 && f[0] == "->" && f[1] == rs:
			n, err := strconv.ParseUint(f[2], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// TestDirectorRestartDropsNothingIncluded is TestDirectorRestartDropsNothing
// with the service in an included file.
func TestDirectorRestartDropsNothingIncluded(t *testing.T) {
	testDirectorRestartDropsNothing(t, true)
}

// TestDirectorIncludedReload: with every service in a file of its own, a
// reload applies the one file that changed; a file with a problem is
// refused with its own path, line and column, through the command and
// through the socket, and changes nothing (traffic goes on, a resync
// keeps the old configuration); a file removed takes its service away; a
// restart after all of it changes nothing.
func TestDirectorIncludedReload(t *testing.T) {
	d := newDirectorLab(t)
	d.included = true
	d.threeKindsRealServers(t)
	d.writeConfig(t, threeKinds)
	if out := d.dir.MustRun(t, "lvs-node", "check", "--config", d.cfgPath); !strings.Contains(out, "valid director configuration (3 virtual services;") {
		t.Fatalf("check said %q", out)
	}
	proc := d.start(t)
	mustContain(t, "table after start", d.save(t), "-A -t 10.0.0.100:80 -s rr", "-A -t 10.0.0.101:80 -s rr", "-a -t 10.0.0.102:80 -r 10.2.0.14:8080 -m -w 1")
	expectBoth(t, d.client, "10.0.0.100:80", "rs1", "rs2")

	// A weight in dr.yaml: that file alone changed.
	withWeight := strings.Replace(threeKinds, "real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]\n  - name: tun",
		"real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12, weight: 5}]\n  - name: tun", 1)
	d.writeConfig(t, withWeight)
	if out := d.dir.MustRun(t, "lvs-node", "director", "reload", "--config", d.cfgPath); !strings.Contains(out, "reloaded") {
		t.Fatalf("reload said %q", out)
	}
	good := d.save(t)
	mustContain(t, "table after reload", good, "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 5")
	mustContain(t, "reload log", proc.Output(), "changes=1")

	// A problem in nat.yaml, reported with that file's position.
	d.writeConfig(t, strings.Replace(withWeight, "scheduler: rr\n    forwarding: nat", "scheduler: nope\n    forwarding: nat", 1))
	natFile := filepath.Join(d.tmp, "services.d", "nat.yaml")
	want := natFile + ":4:3: [0].scheduler: unknown scheduler \"nope\""
	out, err := d.dir.Run(t, "lvs-node", "director", "reload", "--config", d.cfgPath)
	if err == nil {
		t.Fatalf("bad reload accepted: %s", out)
	}
	mustContain(t, "bad reload output", out, want)
	out, err = d.dir.Run(t, "lvs-node", "director", "reload", "--socket", d.sock)
	if err == nil {
		t.Fatalf("bad reload accepted by the daemon: %s", out)
	}
	mustContain(t, "daemon's refusal", out, want, "previous configuration stays in effect")
	out, err = d.dir.Run(t, "lvs-node", "check", "--config", d.cfgPath)
	if err == nil {
		t.Fatalf("check accepted the bad file: %s", out)
	}
	mustContain(t, "check output", out, want)
	time.Sleep(1500 * time.Millisecond) // a resync runs on the old configuration
	if s := d.save(t); s != good {
		t.Fatalf("bad reload changed the table:\n%s\nwas:\n%s", s, good)
	}
	if seen := spread(t, d.client, "10.0.0.102:80", 4); seen["rs3"]+seen["rs4"] != 4 {
		t.Fatalf("traffic after a bad reload: %v", seen)
	}

	// The file fixed, and tun.yaml removed: its service goes, the others
	// stay as they were.
	d.writeConfig(t, strings.Replace(withWeight, threeKinds[strings.Index(threeKinds, "  - name: tun"):strings.Index(threeKinds, "  - name: nat")], "", 1))
	d.dir.MustRun(t, "lvs-node", "director", "reload", "--socket", d.sock)
	s := d.save(t)
	if strings.Contains(s, "10.0.0.101") {
		t.Fatalf("the removed file's service is still there:\n%s", s)
	}
	mustContain(t, "table after removing tun.yaml", s, "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 5", "-a -t 10.0.0.102:80 -r 10.2.0.13:8080 -m -w 1")
	expectBoth(t, d.client, "10.0.0.102:80", "rs3", "rs4")

	// A restart reads the files again and changes nothing.
	before := d.save(t)
	if err := proc.Stop(10 * time.Second); !proc.Exited() {
		t.Fatalf("director did not stop: %v", err)
	}
	proc = d.start(t)
	mustContain(t, "restart log", proc.Output(), "changes=0")
	if s := d.save(t); s != before {
		t.Fatalf("restart changed the table:\n%s\nwas:\n%s", s, before)
	}
}
