package fullnat

import (
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
	"github.com/lvs-node/lvs-node/toa/format"
)

func testSpec() Spec {
	return Spec{
		Pools: []Pool{
			{Addrs: addrs("10.1.0.2", "10.1.0.3"), TOA: format.K254},
			{Addrs: addrs("2001:db8:1::2"), TOA: format.K254b},
		},
		Targets: []Target{
			{Service: "web", Protocol: ProtoTCP, VIP: netip.MustParseAddr("198.51.100.100"), VPort: 80, RS: netip.MustParseAddr("10.1.0.11"), RPort: 8080, Pool: 0},
			{Service: "web", Protocol: ProtoTCP, VIP: netip.MustParseAddr("198.51.100.100"), VPort: 80, RS: netip.MustParseAddr("10.1.0.12"), RPort: 8080, Pool: 0},
			{Service: "marked", Protocol: ProtoTCP, FWMark: 7, RS: netip.MustParseAddr("10.1.0.11"), Pool: 0},
			{Service: "web6", Protocol: ProtoTCP, VIP: netip.MustParseAddr("2001:db8:c::100"), VPort: 443, RS: netip.MustParseAddr("2001:db8:1::11"), RPort: 443, Pool: 1},
		},
	}
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func nftList(t *testing.T, fam string) string {
	t.Helper()
	out, err := exec.Command("nft", "list", "table", fam, "lvs_test_fullnat").CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

func handles(t *testing.T, f nftables.TableFamily, chain string) []uint64 {
	t.Helper()
	rs, err := dumpRules(f, "lvs_test_fullnat", chain)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, r := range rs {
		out = append(out, r.handle)
	}
	return out
}

func TestNATTables(t *testing.T) {
	kerneltest.FreshNetns(t)
	n, err := openNAT("lvs_test_fullnat")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.close() })
	spec := testSpec()
	if err := spec.Check(); err != nil {
		t.Fatal(err)
	}
	changes, err := n.set(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Fatalf("first set: %q", changes)
	}
	v4 := nftList(t, "ip")
	t.Logf("nft list table ip:\n%s", v4)
	for _, want := range []string{
		"type nat hook postrouting priority srcnat; policy accept;",
		"ct original ip daddr 198.51.100.100 ct original proto-dst 80 ip daddr 10.1.0.11 tcp dport 8080 goto pool0",
		"meta l4proto tcp meta mark 0x00000007 ip daddr 10.1.0.11 goto pool0",
		"jhash ip saddr . th sport mod 2 seed 0x4c56 0 snat to 10.1.0.2:1024-65535 fully-random",
		"jhash ip saddr . th sport mod 2 seed 0x4c56 1 snat to 10.1.0.3:1024-65535 fully-random",
		`comment "lvs-node fullnat web: tcp 198.51.100.100:80 -> 10.1.0.12:8080 #`,
	} {
		if !strings.Contains(v4, want) {
			t.Errorf("ip table lacks %q", want)
		}
	}
	v6 := nftList(t, "ip6")
	t.Logf("nft list table ip6:\n%s", v6)
	for _, want := range []string{
		"ct original ip6 daddr 2001:db8:c::100 ct original proto-dst 443 ip6 daddr 2001:db8:1::11 tcp dport 443 goto pool1",
		"snat to [2001:db8:1::2]:1024-65535 fully-random",
	} {
		if !strings.Contains(v6, want) {
			t.Errorf("ip6 table lacks %q", want)
		}
	}
	if strings.Contains(v6, "10.1.0") || strings.Contains(v4, "2001:") {
		t.Error("a family's table holds the other family's rules")
	}

	// The same spec again changes nothing: no rule is rewritten.
	before := handles(t, nftables.TableFamilyIPv4, chainPost)
	if changes, err := n.set(spec); err != nil || len(changes) != 0 {
		t.Fatalf("second set: %q, %v", changes, err)
	}
	if after := handles(t, nftables.TableFamilyIPv4, chainPost); !slices.Equal(before, after) {
		t.Fatalf("an unchanged set rewrote the rules: %v, then %v", before, after)
	}

	// A rule deleted by hand, or one edited, is put back.
	if out, err := exec.Command("nft", "delete", "rule", "ip", "lvs_test_fullnat", chainPost, "handle", itoa(before[1])).CombinedOutput(); err != nil {
		t.Fatalf("nft delete rule: %v: %s", err, out)
	}
	if changes, err := n.set(spec); err != nil || len(changes) != 1 {
		t.Fatalf("repair: %q, %v", changes, err)
	}
	if got := nftList(t, "ip"); got != v4 {
		t.Fatalf("after repair:\n%s", got)
	}
	if out, err := exec.Command("nft", "replace", "rule", "ip", "lvs_test_fullnat", "pool0", "handle", itoa(handles(t, nftables.TableFamilyIPv4, "pool0")[0]),
		"snat", "to", "10.9.9.9").CombinedOutput(); err != nil {
		t.Fatalf("nft replace rule: %v: %s", err, out)
	}
	if changes, err := n.set(spec); err != nil || len(changes) != 1 {
		t.Fatalf("repair of an edited rule: %q, %v", changes, err)
	}
	if got := nftList(t, "ip"); strings.Contains(got, "10.9.9.9") {
		t.Fatalf("an edited rule survived:\n%s", got)
	}

	// Only IPv4 left: the ip6 table goes.
	spec.Targets = spec.Targets[:3]
	if changes, err := n.set(spec); err != nil || len(changes) != 1 || !strings.HasPrefix(changes[0], "remove nftables table ip6") {
		t.Fatalf("set without IPv6: %q, %v", changes, err)
	}
	if nftList(t, "ip6") != "" {
		t.Fatal("the ip6 table is still there")
	}
	for range 2 {
		if _, err := n.remove(); err != nil {
			t.Fatal(err)
		}
	}
	if nftList(t, "ip") != "" {
		t.Fatal("the ip table is still there after remove")
	}
}

func itoa(h uint64) string { return strconv.FormatUint(h, 10) }
