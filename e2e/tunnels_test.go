//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// tunnelDirector is the director of TestTunnelTypes: an IPv4 VIP with an
// IPv4 (ipip) and an IPv6 (IPv4 in IPv6) real server, a GUE and a GRE
// real server.
const tunnelDirector = `director:
  state_dir: %[1]s/director
listen: {control: "", metrics: ""}
virtual_services:
  - name: mixed
    vip: 10.0.0.100
    port: 80
    scheduler: rr
    forwarding: tun
    bind_vip: true
    real_servers: [{address: 10.0.0.11}, {address: "fd00::12"}]
  - name: gue
    vip: 10.0.0.101
    port: 80
    forwarding: tun
    bind_vip: true
    real_servers: [{address: 10.0.0.13, tunnel_type: gue, tunnel_port: 6080}]
  - name: gre
    vip: 10.0.0.102
    port: 80
    forwarding: tun
    bind_vip: true
    real_servers: [{address: 10.0.0.14, tunnel_type: gre}]
`

// TestTunnelTypes: real servers set up by "lvs-node realserver up" with
// each tunnel type receive TCP from the director's IPVS: an IPv4 VIP with
// one IPv4 and one IPv6 real server (IPv4 in IPv6 on an ip6tnl device), a
// GUE and a GRE real server. lvs-node's ipvsadm views of this table and of
// its connections match ipvsadm byte for byte, and "realserver down"
// removes the tunnels it made.
func TestTunnelTypes(t *testing.T) {
	modprobe(t, "ip_vs", "ip_vs_rr", "ip_vs_wlc")
	l := topo.New(t)
	lan := l.Net("lan", "10.0.0.0/24")
	client := l.Host("client", topo.On(lan, "10.0.0.2"))
	dir := l.Host("dir", topo.On(lan, "10.0.0.1", "fd00::1/64"))
	rs := map[string]*topo.Host{
		"rs1": l.Host("rs1", topo.On(lan, "10.0.0.11")),
		"rs2": l.Host("rs2", topo.On(lan, "10.0.0.12", "fd00::12/64")),
		"rs3": l.Host("rs3", topo.On(lan, "10.0.0.13")),
		"rs4": l.Host("rs4", topo.On(lan, "10.0.0.14")),
	}
	vips := map[string]string{
		"rs1": "{address: 10.0.0.100, mode: tun}",
		"rs2": "{address: 10.0.0.100, mode: tun, tunnel: ip6tnl}",
		"rs3": "{address: 10.0.0.101, mode: tun, tunnel: gue, tunnel_port: 6080}",
		"rs4": "{address: 10.0.0.102, mode: tun, tunnel: gre}",
	}
	cfgs := map[string]string{}
	for name, h := range rs {
		h.ServeName(t, 80)
		// Strict reverse-path filtering, as many distributions set it.
		for _, dev := range []string{"all", "default"} {
			h.Sysctl(t, "net/ipv4/conf/"+dev+"/rp_filter", "1")
		}
		cfgs[name] = writeRSConfig(t, name, "  vips:\n    - "+vips[name]+"\n")
		out := h.MustRun(t, "lvs-node", "realserver", "up", "--config", cfgs[name])
		t.Logf("%s: realserver up:\n%s", name, out)
	}
	for name, want := range map[string][2]string{"rs1": {"tunl0", "10.0.0.100/32"}, "rs2": {"lvs-ip6tnl", "10.0.0.100/32"},
		"rs3": {"tunl0", "10.0.0.101/32"}, "rs4": {"gre0", "10.0.0.102/32"}} {
		if out := rs[name].MustRun(t, "ip", "-o", "addr", "show", "dev", want[0]); !strings.Contains(out, " "+want[1]+" ") {
			t.Fatalf("%s has no VIP %s on %s:\n%s", name, want[1], want[0], out)
		}
	}
	if out := rs["rs3"].MustRun(t, "/sbin/ip", "fou", "show"); !strings.Contains(out, "port 6080 gue") {
		t.Fatalf("rs3 has no FOU port: %q", out)
	}

	tmp := t.TempDir()
	dcfg := filepath.Join(tmp, "director.yaml")
	if err := os.WriteFile(dcfg, []byte(fmt.Sprintf(tunnelDirector, tmp)), 0o600); err != nil {
		t.Fatal(err)
	}
	dir.MustRun(t, "lvs-node", "director", "--once", "--config", dcfg)
	saved := stdout(t, dir, "", "ipvsadm", "-Sn")
	for _, want := range []string{
		"-a -t 10.0.0.100:80 -r [fd00::12]:80 -i -w 1 --tun-type ipip",
		"-a -t 10.0.0.101:80 -r 10.0.0.13:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum",
		"-a -t 10.0.0.102:80 -r 10.0.0.14:80 -i -w 1 --tun-type gre --tun-nocsum",
	} {
		if !strings.Contains(saved, want) {
			t.Fatalf("director table lacks %q:\n%s", want, saved)
		}
	}

	// TCP through every tunnel, to both real servers of the mixed VIP.
	for _, tc := range []struct {
		vip  string
		want map[string]int
	}{
		{"10.0.0.100", map[string]int{"rs1": 2, "rs2": 2}},
		{"10.0.0.101", map[string]int{"rs3": 2}},
		{"10.0.0.102", map[string]int{"rs4": 2}},
	} {
		seen, n := map[string]int{}, 0
		for _, c := range tc.want {
			n += c
		}
		for i := 0; i < n; i++ {
			got, err := client.Get(tc.vip+":80", 5*time.Second)
			if err != nil {
				t.Fatalf("request %d to %s: %v\n%s", i, tc.vip, err, stdout(t, dir, "", "ipvsadm", "-Ln", "--stats"))
			}
			seen[got]++
		}
		if fmt.Sprint(seen) != fmt.Sprint(tc.want) {
			t.Errorf("%s answered by %v, want %v", tc.vip, seen, tc.want)
		}
	}

	// The ipvsadm views of a table with mixed families and every tunnel
	// type, and of its connections.
	for _, layout := range [][]string{{}, {"--tun-info"}, {"--stats", "--exact"}, {"--thresholds"}} {
		want := stdout(t, dir, "", "ipvsadm", append([]string{"-Ln"}, layout...)...)
		got := stdout(t, dir, "", "lvs-node", append([]string{"ipvs", "list"}, layout...)...)
		if got != want {
			t.Errorf("lvs-node ipvs list %v differs from ipvsadm -Ln\n--- lvs-node\n%s--- ipvsadm\n%s", layout, got, want)
		}
	}
	if got := stdout(t, dir, "", "lvs-node", "ipvs", "save"); got != saved {
		t.Errorf("lvs-node ipvs save differs from ipvsadm -Sn\n--- lvs-node\n%s--- ipvsadm\n%s", got, saved)
	}
	want := stdout(t, dir, "", "ipvsadm", "-Ln", "-t", "10.0.0.100:80")
	if got := stdout(t, dir, "", "lvs-node", "ipvs", "list", "-t", "10.0.0.100:80"); got != want {
		t.Errorf("lvs-node ipvs list -t differs from ipvsadm -Ln -t\n--- lvs-node\n%s--- ipvsadm\n%s", got, want)
	}
	conns := sameAsIpvsadm(t, dir, []string{"-Lnc"}, []string{"ipvs", "list", "-c"})
	if !strings.Contains(conns, "[fd00::12]:80") || !strings.Contains(conns, "10.0.0.14:80") {
		t.Errorf("connections lack the IPv6 and the GRE real server:\n%s", conns)
	}
	sameAsIpvsadm(t, dir, []string{"-Lnc", "--persistent-conn"}, []string{"ipvs", "list", "-c", "--persistent-conn"})

	// down removes the tunnels lvs-node made and restores rp_filter.
	for name, h := range rs {
		h.MustRun(t, "lvs-node", "realserver", "down", "--config", cfgs[name])
		if got := h.ReadSysctl(t, "net/ipv4/conf/all/rp_filter"); got != "1" {
			t.Errorf("%s: all/rp_filter = %s after down, want 1", name, got)
		}
	}
	if out := rs["rs2"].MustRun(t, "ip", "link", "show"); strings.Contains(out, "lvs-ip6tnl") {
		t.Errorf("rs2 keeps lvs-ip6tnl after down:\n%s", out)
	}
	if out := rs["rs3"].MustRun(t, "/sbin/ip", "fou", "show"); strings.Contains(out, "6080") {
		t.Errorf("rs3 keeps its FOU port after down: %q", out)
	}
	if _, err := client.Get("10.0.0.101:80", time.Second); err == nil {
		t.Errorf("the GUE VIP still answers after down")
	}
}

// sameAsIpvsadm runs lvs-node with ours and ipvsadm with theirs on h and
// requires the outputs to be identical. Connection expiry counts down
// each second: lvs-node's output must equal ipvsadm's run just before or
// just after it (tried a few times).
func sameAsIpvsadm(t *testing.T, h *topo.Host, theirs, ours []string) string {
	t.Helper()
	var before, got, after string
	for i := 0; i < 5; i++ {
		before = stdout(t, h, "", "ipvsadm", theirs...)
		got = stdout(t, h, "", "lvs-node", ours...)
		after = stdout(t, h, "", "ipvsadm", theirs...)
		if got == before || got == after {
			return got
		}
	}
	t.Errorf("lvs-node %s differs from ipvsadm %s\n--- lvs-node\n%s--- ipvsadm before\n%s--- ipvsadm after\n%s",
		strings.Join(ours, " "), strings.Join(theirs, " "), got, before, after)
	return got
}
