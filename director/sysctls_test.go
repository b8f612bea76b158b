package director

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
	"github.com/lvs-node/lvs-node/internal/kerneltest"
	"github.com/lvs-node/lvs-node/internal/sysctls"
)

const nat6 = `virtual_services:
  - name: v6
    vip: "2001:db8::100"
    port: 80
    forwarding: nat
    real_servers: [{address: "2001:db8:1::11"}]
`

// TestIPv6ForwardingKeepsRouterAdvertisements: turning IPv6 forwarding on
// for NAT first sets accept_ra 2 where it is 1 (so SLAAC keeps working),
// records the originals, and down puts everything back.
func TestIPv6ForwardingKeepsRouterAdvertisements(t *testing.T) {
	r := newRig(t)
	r.s = newFakeSysctls(map[string]string{
		"net/ipv4/ip_forward":               "0",
		"net/ipv6/conf/all/forwarding":      "0",
		"net/ipv6/conf/all/accept_ra":       "1",
		"net/ipv6/conf/default/accept_ra":   "1",
		"net/ipv6/conf/lo/accept_ra":        "1",
		"net/ipv6/conf/eth0/accept_ra":      "1",
		"net/ipv6/conf/eth1/accept_ra":      "0",
		"net/ipv6/conf/eth2/accept_ra":      "2",
		"net/ipv6/conf/eth0.100/accept_ra":  "1",
		"net/ipv6/conf/eth0.100/forwarding": "0",
	})
	before := r.s.String()
	r.restart()
	r.apply(t, r.config(t, nat6))
	want := strings.NewReplacer(
		"net.ipv6.conf.all.forwarding=0", "net.ipv6.conf.all.forwarding=1",
		"net.ipv6.conf.default.accept_ra=1", "net.ipv6.conf.default.accept_ra=2",
		"net.ipv6.conf.eth0.accept_ra=1", "net.ipv6.conf.eth0.accept_ra=2",
		"net.ipv6.conf.eth0.100.accept_ra=1", "net.ipv6.conf.eth0.100.accept_ra=2").Replace(before)
	if got := r.s.String(); got != want {
		t.Errorf("sysctls:\n%s\nwant:\n%s", got, want)
	}
	if _, err := r.engine.Down(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := r.s.String(); got != before {
		t.Errorf("after down:\n%s\nwant:\n%s", got, before)
	}

	// Forwarding on already: the host's own setup, left alone.
	r.s.vals["net/ipv6/conf/all/forwarding"] = "1"
	r.restart()
	r.apply(t, r.config(t, nat6))
	if r.s.vals["net/ipv6/conf/eth0/accept_ra"] != "1" {
		t.Errorf("accept_ra changed on a host that forwarded already:\n%s", r.s)
	}
}

// TestIPv6ForwardingRealKernel: the same on a real interface of a fresh
// namespace, through the sysctl recorder the daemon uses.
func TestIPv6ForwardingRealKernel(t *testing.T) {
	kerneltest.FreshNetns(t)
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lvst0"}, PeerName: "lvst1"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rec, err := sysctls.Open(filepath.Join(dir, sysctlsFile))
	if err != nil {
		t.Fatal(err)
	}
	read := func(key string) string {
		t.Helper()
		b, err := os.ReadFile("/proc/sys/" + key)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile("/proc/sys/net/ipv6/conf/lvst0/accept_ra", []byte("1"), 0o644))
	must(os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("0"), 0o644))
	r := &rig{k: ipvstest.New(), m: &fakeMarker{}, dir: dir}
	r.engine = NewEngine(dir, Deps{Kernel: r.k, Marker: r.m, Sysctls: rec})
	r.apply(t, r.config(t, nat6))
	if read("net/ipv6/conf/all/forwarding") != "1" || read("net/ipv6/conf/lvst0/accept_ra") != "2" {
		t.Errorf("forwarding %s, accept_ra %s; want 1 and 2", read("net/ipv6/conf/all/forwarding"), read("net/ipv6/conf/lvst0/accept_ra"))
	}
	if _, err := r.engine.Down(t.Context()); err != nil {
		t.Fatal(err)
	}
	if read("net/ipv6/conf/all/forwarding") != "0" || read("net/ipv6/conf/lvst0/accept_ra") != "1" {
		t.Errorf("after down: forwarding %s, accept_ra %s; want 0 and 1", read("net/ipv6/conf/all/forwarding"), read("net/ipv6/conf/lvst0/accept_ra"))
	}
}
