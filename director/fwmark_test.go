package director

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
)

// TestMarksDerivedFromNames: the marks of ports: services are a function
// of the configuration: pinned for the default range (an upgrade must not
// move them), the same on two directors, whatever the order of the file,
// inside the range and the mask, and distinct.
func TestMarksDerivedFromNames(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, marked)
	got, err := AllocateMarks(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]uint32{"shop": 0x3009, "blog": 0x30b1}; !maps.Equal(got, want) {
		t.Errorf("marks = %#x, want %#x (pinned: derived from the names)", got, want)
	}
	r.apply(t, cfg)
	wantMarks := "shop daddr 10.0.0.102 tcp dport {80,443} mark set 0x3009/0x30ff\nblog daddr 10.0.0.103 udp dport {0} mark set 0x30b1/0x30ff\n"
	if r.m.String() != wantMarks {
		t.Errorf("rules:\n%s\nwant:\n%s", r.m, wantMarks)
	}

	// Another director with the same services in another order.
	other := newRig(t)
	swapped := "virtual_services:\n" + marked[strings.Index(marked, "  - name: blog"):] + marked[len("virtual_services:\n"):strings.Index(marked, "  - name: blog")]
	other.apply(t, other.config(t, swapped))
	if other.k.String() != r.k.String() {
		t.Errorf("two directors disagree:\n%s\nand\n%s", r.k, other.k)
	}
	// A restart with the reordered file changes nothing.
	r.restart()
	if ops := r.apply(t, r.config(t, swapped)); len(ops) != 0 {
		t.Errorf("restart with a reordered file: %s", formatOps(ops))
	}

	// Many services in a small range: all distinct, in range, same set
	// whatever the order.
	var b strings.Builder
	b.WriteString("  auto_fwmark: {first: 0x10, last: 0x2f, mask: 0x3f}\nvirtual_services:\n")
	for i := range 32 {
		fmt.Fprintf(&b, "  - {name: s%02d, vip: 10.0.1.%d, ports: [80]}\n", i, i+1)
	}
	small := r.config(t, b.String())
	m1, err := AllocateMarks(small, nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(small.VirtualServices)
	m2, err := AllocateMarks(small, nil)
	if err != nil || !maps.Equal(m1, m2) {
		t.Fatalf("order changed the marks: %v, %v", m2, err)
	}
	seen := map[uint32]string{}
	for name, m := range m1 {
		if m < 0x10 || m > 0x2f || m&^0x3f != 0 || seen[m] != "" {
			t.Errorf("%s: mark %#x out of range or given twice (%s)", name, m, seen[m])
		}
		seen[m] = name
	}
	if _, _, err := ParseConfig("d.yaml", []byte("director:\n"+b.String()+"  - {name: x, vip: 10.0.2.1, ports: [80]}\n")); err == nil ||
		!strings.Contains(err.Error(), "director.auto_fwmark: range holds 32 marks but 33 services use ports:") {
		t.Errorf("an over-full range: %v", err)
	}
}

// TestMarksAvoidWhatOthersHold: a mark held by an explicit fwmark: or by a
// firewall-mark service lvs-node does not own moves the service to the
// next free mark; the rest keep theirs.
func TestMarksAvoidWhatOthersHold(t *testing.T) {
	r := newRig(t)
	// A hand-made service holds shop's mark.
	r.k.Run(ipvs.Op{Kind: ipvs.AddService, Service: ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: afInet, FWMark: 0x3009}, Scheduler: "rr", Netmask: 0xffffffff}})
	r.apply(t, r.config(t, marked))
	if !strings.Contains(r.m.String(), "shop daddr 10.0.0.102 tcp dport {80,443} mark set 0x300a/0x30ff\n") ||
		!strings.Contains(r.m.String(), "mark set 0x30b1/0x30ff") {
		t.Errorf("rules:\n%s", r.m)
	}
	if !strings.Contains(r.k.String(), "-A -f 12297 -s rr\n") {
		t.Errorf("the hand-made service was touched:\n%s", r.k)
	}
	// An explicit fwmark on blog's mark moves blog.
	cfg := r.config(t, strings.Replace(marked, "fwmark: 1000", "fwmark: 0x30b1", 1))
	if _, err := r.engine.Reload(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.m.String(), "blog daddr 10.0.0.103 udp dport {0} mark set 0x30b2/0x30ff\n") {
		t.Errorf("blog not moved off the explicit mark:\n%s", r.m)
	}
}

// orderMarker records, at each Set, the kernel's table: the new service
// of a changed mark must exist before the rules set the mark, the old
// one must still exist while they set the old.
type orderMarker struct {
	fakeMarker
	k     *ipvstest.Kernel
	atSet []string
}

func (m *orderMarker) Set(rules []MarkRule) error {
	m.atSet = append(m.atSet, m.k.String())
	return m.fakeMarker.Set(rules)
}

// TestMarksRecordedByEarlierVersionsMigrate: marks recorded by an earlier
// version (allocated by history, in 0x4c56xxxx, rules that set the whole
// mark) move to the derived ones without a moment in which packets carry
// a mark no service has: the new service first, then the rules, then the
// old service goes.
func TestMarksRecordedByEarlierVersionsMigrate(t *testing.T) {
	r := newRig(t)
	om := &orderMarker{k: r.k}
	r.engine = NewEngine(r.dir, Deps{Kernel: r.k, Marker: om, Sysctls: r.s, Host: r.a})
	// What an earlier version left: its record and its service.
	old := `{"services": [{"family": 2, "fwmark": 1280704512}], "fwmarks": {"shop": 1280704512}}`
	if err := os.WriteFile(recordsPath(r.dir), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	r.k.Run(ipvs.Op{Kind: ipvs.AddService, Service: ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: afInet, FWMark: 0x4c560000}, Scheduler: "wlc", Netmask: 0xffffffff}},
		ipvs.Op{Kind: ipvs.AddDest, Service: ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: afInet, FWMark: 0x4c560000}}, Dest: ipvs.Destination{DestKey: ipvs.DestKey{Addr: netip.MustParseAddr("10.0.0.21")}, Forward: ipvs.Route, Weight: 1}})
	cfg := r.config(t, marked[:strings.Index(marked, "  - name: legacy")])
	r.apply(t, cfg)
	if len(om.atSet) != 1 || !strings.Contains(om.atSet[0], "-A -f 1280704512") || !strings.Contains(om.atSet[0], "-A -f 12297 -s wlc -p 60") {
		t.Fatalf("when the rules changed the kernel held:\n%s", strings.Join(om.atSet, "\n--\n"))
	}
	r.expectKernel(t, "-A -f 12297 -s wlc -p 60\n-a -f 12297 -r 10.0.0.21:0 -g -w 1\n")
	if om.String() != "shop daddr 10.0.0.102 tcp dport {80,443} mark set 0x3009/0x30ff\n" {
		t.Errorf("rules:\n%s", om.String())
	}
}
