package director

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/lvs-node/lvs-node/internal/kerneltest"

	"github.com/vishvananda/netlink"
)

func addrsOf(t *testing.T, ifname string) []netip.Addr {
	t.Helper()
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, a := range as {
		ip, _ := netip.AddrFromSlice(a.IP)
		if ones, _ := a.Mask.Size(); ones == ip.Unmap().BitLen() {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

func TestLinkAddrsRealKernel(t *testing.T) {
	kerneltest.FreshNetns(t)
	var a linkAddrs
	v4, v6 := netip.MustParseAddr("10.0.0.100"), netip.MustParseAddr("2001:db8::100")
	for range 2 { // idempotent
		for _, ip := range []netip.Addr{v4, v6} {
			if err := a.AddAddr("lo", ip); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := addrsOf(t, "lo")
	if len(got) != 2 || !slices.Contains(got, v4) || !slices.Contains(got, v6) {
		t.Fatalf("addresses = %v", got)
	}
	for range 2 { // a missing address is not an error
		if err := a.DelAddr("lo", v4); err != nil {
			t.Fatal(err)
		}
	}
	if got := addrsOf(t, "lo"); slices.Contains(got, v4) || !slices.Contains(got, v6) {
		t.Fatalf("after delete: %v", got)
	}
	if err := a.DelAddr("nosuch0", v6); err != nil {
		t.Errorf("missing interface: %v", err)
	}
	if err := a.AddAddr("nosuch0", v6); err == nil {
		t.Error("adding to a missing interface succeeded")
	}
}
