package director

import (
	"net/netip"
	"testing"

	"github.com/lvs-node/lvs-node/internal/hostnet"
	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
	"github.com/lvs-node/lvs-node/internal/kerneltest"
)

// TestBindVIPRealKernel binds VIPs on lo of a fresh namespace: a VIP that
// was there before (as keepalived's VRRP would have put it) is neither
// recorded nor removed, on a reload that drops its service or on down;
// the VIPs lvs-node added are removed.
func TestBindVIPRealKernel(t *testing.T) {
	kerneltest.FreshNetns(t)
	host, err := hostnet.NewNetlinkKernel()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	vrrp := hostnet.Addr{Dev: "lo", Prefix: netip.MustParsePrefix("10.0.0.200/32")}
	if err := host.Add(vrrp); err != nil {
		t.Fatal(err)
	}
	r := &rig{k: ipvstest.New(), m: &fakeMarker{}, dir: t.TempDir()}
	r.engine = NewEngine(r.dir, Deps{Kernel: r.k, Marker: r.m, Host: host})
	rs := func(vip string) string {
		if netip.MustParseAddr(vip).Is6() {
			return "2001:db8::11"
		}
		return "10.1.0.1"
	}
	cfg := func(vips ...string) *Config {
		body := "  vip_interface: lo\nvirtual_services:\n"
		for i, v := range vips {
			body += "  - {name: s" + string(rune('a'+i)) + ", vip: " + v + ", port: 80, bind_vip: true, real_servers: [{address: " + rs(v) + "}]}\n"
		}
		return r.config(t, body)
	}
	has := func(p string) bool {
		ok, err := host.HasAddr(hostnet.Addr{Dev: "lo", Prefix: netip.MustParsePrefix(p)})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	r.apply(t, cfg("10.0.0.100", "10.0.0.200", "2001:db8::100"))
	if !has("10.0.0.100/32") || !has("10.0.0.200/32") || !has("2001:db8::100/128") {
		t.Fatal("VIPs not bound")
	}
	if r.engine.rec.Host.OwnsAddr(vrrp) {
		t.Error("a VIP present before bind_vip was recorded as lvs-node's")
	}
	r.apply(t, cfg("10.0.0.100"))
	if !has("10.0.0.200/32") {
		t.Error("a reload removed a VIP lvs-node did not add")
	}
	if has("2001:db8::100/128") {
		t.Error("a VIP lvs-node added stayed after its service went")
	}
	r.engine = NewEngine(r.dir, Deps{Kernel: r.k, Marker: r.m, Host: host}) // a restart
	if _, err := r.engine.Down(t.Context()); err != nil {
		t.Fatal(err)
	}
	if has("10.0.0.100/32") {
		t.Error("down left a VIP lvs-node added")
	}
	if !has("10.0.0.200/32") {
		t.Error("down removed a VIP lvs-node did not add")
	}
}
