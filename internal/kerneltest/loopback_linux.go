package kerneltest

import (
	"testing"

	"github.com/vishvananda/netlink"
)

// LoopbackUp brings up lo in the namespace of the calling thread (a new
// namespace starts with it down).
func LoopbackUp(t testing.TB) {
	t.Helper()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatalf("find lo: %v", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatalf("bring lo up: %v", err)
	}
}
