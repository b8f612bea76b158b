package rsagent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/config"
)

// TestTunnels: every tunnel type sets up its device (loading its module),
// the FOU port of gue, rp_filter 0 where IPv4 arrives, is idempotent, and
// down removes exactly what was added and restores every sysctl.
func TestTunnels(t *testing.T) {
	f := newFake(t)
	for _, m := range []string{"sit", "ip_gre", "ip6_tunnel", "fou"} {
		f.modules[m] = true
	}
	before := f.String()
	c, doc := loadYAML(t, t.TempDir(), `realserver:
  state_dir: STATE
  vips:
    - {address: 10.0.0.101, mode: tun}
    - {address: 10.0.0.102, mode: tun, tunnel: gue, tunnel_port: 6080}
    - {address: 10.0.0.103, mode: tun, tunnel: gre}
    - {address: 10.0.0.104, mode: tun, tunnel: ip6tnl}
    - {address: "2001:db8::105", mode: tun}
    - {address: "2001:db8::106", mode: tun, tunnel: ip6tnl}
`)
	a := newAgent(t, f, c, doc)
	changes, err := a.Up()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(changes, "\n")
	for _, want := range []string{
		"ip link add lvs-ip6tnl type ip6tnl", "ip link set sit0 up", "ip link set gre0 up",
		"ip fou add port 6080 gue",
		"ip addr add 10.0.0.102/32 dev tunl0", "ip addr add 10.0.0.103/32 dev gre0", "ip addr add 10.0.0.104/32 dev lvs-ip6tnl",
		"ip addr add 2001:db8::105/128 dev sit0", "ip addr add 2001:db8::106/128 dev lvs-ip6tnl",
		"sysctl -w net/ipv4/conf/all/rp_filter=0", "sysctl -w net/ipv4/conf/gre0/rp_filter=0",
		"sysctl -w net/ipv4/conf/lvs-ip6tnl/rp_filter=0", "sysctl -w net/ipv4/conf/tunl0/rp_filter=0",
	} {
		if !strings.Contains(got+"\n", want+"\n") {
			t.Errorf("up lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "sit0/rp_filter") {
		t.Errorf("rp_filter set on sit0, which carries IPv6 only:\n%s", got)
	}
	// The FOU port comes after the device it feeds, and before the VIPs.
	if i, j := strings.Index(got, "ip fou add"), strings.Index(got, "ip addr add 10.0.0.102"); i < 0 || i > j {
		t.Errorf("order:\n%s", got)
	}
	if again, err := a.Up(); err != nil || len(again) != 0 {
		t.Fatalf("second up: %v %v", again, err)
	}

	down, err := a.Down()
	if err != nil {
		t.Fatal(err)
	}
	if d := strings.Join(down, "\n"); !strings.Contains(d, "ip fou del port 6080") || !strings.Contains(d, "ip link del lvs-ip6tnl") {
		t.Errorf("down:\n%s", d)
	}
	// The modules' fallback devices stay (modules are not unloaded), down
	// as before; everything else is as it was.
	after := f.String()
	for _, l := range []string{"ip link add tunl0 type ipip\nip link set tunl0 down\n", "ip link add sit0 type sit\nip link set sit0 down\n",
		"ip link add gre0 type gre\nip link set gre0 down\n", "ip link add ip6tnl0 type ip6tnl\nip link set ip6tnl0 down\n"} {
		if !strings.Contains(after, l) {
			t.Errorf("after down lacks %q", l)
		}
		after = strings.Replace(after, l, "", 1)
	}
	for _, dev := range []string{"tunl0", "sit0", "gre0", "ip6tnl0"} {
		var kept []string
		for _, line := range strings.Split(after, "\n") {
			if !strings.Contains(line, "/conf/"+dev+"/") {
				kept = append(kept, line)
			}
		}
		after = strings.Join(kept, "\n")
	}
	if after != before {
		t.Errorf("down did not restore the host\n--- after\n%s\n--- before\n%s", after, before)
	}
}

func TestTunnelRejects(t *testing.T) {
	f := newFake(t)
	c, doc := loadYAML(t, t.TempDir(), "realserver:\n  state_dir: STATE\n  vips:\n    - {address: 10.0.0.101, mode: tun, tunnel: gre}\n")
	a := newAgent(t, f, c, doc)
	if _, err := a.Up(); err == nil || !strings.Contains(err.Error(), ":4:40: realserver.vips[0].tunnel: ip_gre is unavailable: gre0 is missing and fake kernel: modprobe: module ip_gre not found") {
		t.Errorf("missing module: %v", err)
	}
	if f.adds != 0 {
		t.Errorf("a refused up changed the host")
	}
	// Without the fou module a gue VIP is refused before any change.
	f2 := newFake(t)
	c2, doc2 := loadYAML(t, t.TempDir(), "realserver:\n  state_dir: STATE\n  vips:\n    - {address: 10.0.0.102, mode: tun, tunnel: gue, tunnel_port: 6080}\n")
	a2 := newAgent(t, f2, c2, doc2)
	before := f2.String()
	if _, err := a2.Up(); err == nil || !strings.Contains(err.Error(), "realserver.vips[0].tunnel: gue needs the fou module: fake kernel: modprobe: module fou not found") {
		t.Errorf("missing fou: %v", err)
	}
	// The preflight loaded ipip (tunl0 appears, as modprobe does) and
	// changed nothing else.
	if after := strings.Replace(f2.String(), "ip link add tunl0 type ipip\nip link set tunl0 down\n", "", 1); !strings.HasPrefix(after, strings.Split(before, "sysctl")[0]) {
		t.Errorf("a refused up changed the host:\n%s\nbefore:\n%s", after, before)
	}
	if f2.adds != 0 {
		t.Errorf("a refused up made %d changes", f2.adds)
	}
	for _, tc := range []struct{ vip, want string }{
		{"{address: 10.0.0.1, mode: tun, tunnel: gue}", "realserver.vips[0].tunnel: a gue tunnel needs tunnel_port"},
		{"{address: 10.0.0.1, mode: tun, tunnel_port: 5}", "realserver.vips[0].tunnel_port: tunnel_port applies to gue tunnels only"},
		{"{address: 10.0.0.1, mode: dr, tunnel: gre}", "realserver.vips[0].tunnel: tunnel applies to tun VIPs only"},
		{"{address: 10.0.0.1, mode: tun, tunnel: vxlan}", "want ipip, gue, gre or ip6tnl, got \"vxlan\""},
	} {
		_, _, err := parseRS(t, "realserver:\n  vips:\n    - "+tc.vip+"\n")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.vip, err, tc.want)
		}
	}
}

// parseRS loads body from a file, returning LoadConfig's result.
func parseRS(t *testing.T, body string) (*Config, *config.Doc, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rs.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return LoadConfig(p)
}
