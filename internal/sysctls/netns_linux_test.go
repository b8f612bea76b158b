package sysctls

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lvs-node/lvs-node/internal/kerneltest"

	"github.com/vishvananda/netlink"
)

func TestRealKernelDottedInterface(t *testing.T) {
	kerneltest.FreshNetns(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0.100"}, PeerName: "peer0"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth eth0.100: %v", err)
	}
	r, err := Open(filepath.Join(t.TempDir(), "sysctls.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{
		"net/ipv4/conf/all/arp_ignore",
		"net/ipv4/conf/eth0.100/arp_ignore",
		"net/ipv4/conf/eth0.100/arp_announce",
		"net/ipv4/conf/eth0.100/rp_filter",
	}
	before := map[string]string{}
	for _, k := range keys {
		v, err := r.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		before[k] = v
	}
	want := map[string]string{keys[0]: "1", keys[1]: "1", keys[2]: "2", keys[3]: "0"}
	if before[keys[3]] == "0" {
		want[keys[3]] = "2"
	}
	for _, k := range keys {
		if err := r.Set(k, want[k]); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		// Read through /proc directly, not through the Recorder.
		b, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b[:len(b)-1]); got != want[k] {
			t.Errorf("%s = %q, want %q", k, got, want[k])
		}
	}
	if err := r.Restore(); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		got, err := r.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		if got != before[k] {
			t.Errorf("after Restore %s = %q, want the original %q", k, got, before[k])
		}
	}
}
