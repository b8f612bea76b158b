package director

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
)

func svc(addr string, port uint16, sched string) ipvs.Service {
	a := netip.MustParseAddr(addr)
	return ipvs.Service{
		ServiceKey: ipvs.ServiceKey{Family: ipvs.FamilyOf(a), Protocol: ipvs.TCP, Addr: a, Port: port},
		Scheduler:  sched, Netmask: 0xffffffff,
	}
}

func dest(addr string, port uint16, w int32) ipvs.DestEntry {
	return ipvs.DestEntry{Destination: ipvs.Destination{DestKey: ipvs.DestKey{Addr: netip.MustParseAddr(addr), Port: port}, Forward: ipvs.Route, Weight: w}}
}

func entry(s ipvs.Service, ds ...ipvs.DestEntry) ipvs.ServiceEntry {
	return ipvs.ServiceEntry{Service: s, Dests: ds}
}

func table(es ...ipvs.ServiceEntry) *ipvs.Table { return &ipvs.Table{Services: es} }

func formatOps(ops []ipvs.Op) string {
	lines := make([]string, len(ops))
	for i, op := range ops {
		lines[i] = FormatOp(op)
	}
	return strings.Join(lines, "\n")
}

func TestDiff(t *testing.T) {
	web := svc("10.0.0.1", 80, "wlc")
	webRR := svc("10.0.0.1", 80, "rr")
	hashed := web
	hashed.Flags |= ipvs.FlagHashed
	api := svc("10.0.0.1", 8080, "wlc")
	hand := svc("10.0.0.9", 22, "rr")
	mark := ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: afInet, FWMark: 7}, Scheduler: "sh", Netmask: 0xffffffff}
	markKernel := mark
	markKernel.Protocol = ipvs.TCP // as the kernel reports it
	owned := func(ss ...ipvs.Service) Ownership {
		o := Ownership{}
		for _, s := range ss {
			o[ipvs.NormKey(s.ServiceKey)] = true
		}
		return o
	}
	nat := dest("10.0.0.11", 8080, 5)
	nat.Forward = ipvs.Masq

	for _, tc := range []struct {
		name             string
		desired, current *ipvs.Table
		owned            Ownership
		want             string
	}{
		{"empty", table(), table(), nil, ""},
		{"create from empty", table(entry(web, dest("10.0.0.11", 80, 1), dest("10.0.0.12", 80, 2))), table(), nil,
			"-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 1\n-a -t 10.0.0.1:80 -r 10.0.0.12:80 -g -w 2"},
		{"nothing to do, hashed flag ignored", table(entry(web, dest("10.0.0.11", 80, 1))), table(entry(hashed, dest("10.0.0.11", 80, 1))), owned(web), ""},
		{"scheduler change edits in place", table(entry(webRR, dest("10.0.0.11", 80, 1))), table(entry(web, dest("10.0.0.11", 80, 1))), owned(web),
			"-E -t 10.0.0.1:80 -s rr"},
		{"weight change edits the server", table(entry(web, dest("10.0.0.11", 80, 7))), table(entry(web, dest("10.0.0.11", 80, 1))), owned(web),
			"-e -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 7"},
		{"forwarding change edits the server", table(entry(api, nat)), table(entry(api, dest("10.0.0.11", 8080, 5))), owned(api),
			"-e -t 10.0.0.1:8080 -r 10.0.0.11:8080 -m -w 5"},
		{"removed server deleted, added server added", table(entry(web, dest("10.0.0.11", 80, 1), dest("10.0.0.13", 80, 1))),
			table(entry(web, dest("10.0.0.11", 80, 1), dest("10.0.0.12", 80, 1))), owned(web),
			"-a -t 10.0.0.1:80 -r 10.0.0.13:80 -g -w 1\n-d -t 10.0.0.1:80 -r 10.0.0.12:80"},
		{"owned service removed: servers first", table(entry(web)), table(entry(web), entry(api, dest("10.0.0.11", 8080, 1))), owned(web, api),
			"-d -t 10.0.0.1:8080 -r 10.0.0.11:8080\n-D -t 10.0.0.1:8080"},
		{"service not owned is never touched", table(entry(web)), table(entry(web), entry(hand, dest("10.0.0.11", 22, 1))), owned(web), ""},
		{"service in config but not owned is adopted", table(entry(web, dest("10.0.0.11", 80, 3))),
			table(entry(web, dest("10.0.0.11", 80, 1), dest("10.0.0.99", 80, 1))), nil,
			"-e -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 3\n-d -t 10.0.0.1:80 -r 10.0.0.99:80"},
		{"key change is delete plus add", table(entry(api)), table(entry(web)), owned(web),
			"-A -t 10.0.0.1:8080 -s wlc\n-D -t 10.0.0.1:80"},
		{"fwmark service matched despite kernel protocol", table(entry(mark, dest("10.0.0.11", 0, 1))), table(entry(markKernel, dest("10.0.0.11", 0, 1))), owned(mark), ""},
		{"owned fwmark service removed", table(), table(entry(markKernel)), owned(mark), "-D -f 7"},
		{"nil tables", nil, nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := formatOps(Diff(tc.desired, tc.current, tc.owned))
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestDiffConverges applies diffs between random-ish tables to the fake
// kernel and checks that the result equals the desired table, that a
// second diff is empty and that the unowned service survives.
func TestDiffConverges(t *testing.T) {
	build := func(seed int) *ipvs.Table {
		tb := &ipvs.Table{}
		for i := range 6 {
			if (seed>>i)&1 == 0 {
				continue
			}
			s := svc(fmt.Sprintf("10.0.%d.1", i), 80, []string{"rr", "wlc"}[seed%2])
			var ds []ipvs.DestEntry
			for j := range 4 {
				if (seed+i+j)%3 != 0 {
					ds = append(ds, dest(fmt.Sprintf("10.1.%d.%d", i, j), 80, int32(seed%5+j)))
				}
			}
			tb.Services = append(tb.Services, entry(s, ds...))
		}
		return tb
	}
	hand := entry(svc("192.168.0.1", 22, "rr"), dest("192.168.0.2", 22, 1))
	for a := range 64 {
		for b := range 64 {
			if (a*7+b)%5 != 0 {
				continue
			}
			k := ipvstest.New()
			k.Run(Diff(build(a), nil, nil)...)
			k.Run(Diff(table(hand), nil, nil)...)
			owned := Ownership{}
			for _, s := range build(a).Services {
				owned[ipvs.NormKey(s.ServiceKey)] = true
			}
			cur, _ := k.Table(t.Context())
			if err := k.Apply(t.Context(), Diff(build(b), cur, owned)); err != nil {
				t.Fatalf("%d -> %d: %v", a, b, err)
			}
			cur, _ = k.Table(t.Context())
			if ops := Diff(build(b), cur, owned); len(ops) != 0 {
				t.Fatalf("%d -> %d: not converged: %s", a, b, formatOps(ops))
			}
			if !strings.Contains(k.String(), "-A -t 192.168.0.1:22 -s rr\n-a -t 192.168.0.1:22 -r 192.168.0.2:22 -g -w 1\n") {
				t.Fatalf("%d -> %d: hand-made service lost:\n%s", a, b, k)
			}
			if n := strings.Count(k.String(), "-A "); n != len(build(b).Services)+1 {
				t.Fatalf("%d -> %d: %d services in kernel:\n%s", a, b, n, k)
			}
		}
	}
}

func bigTable(n, m int) *ipvs.Table {
	tb := &ipvs.Table{Services: make([]ipvs.ServiceEntry, n)}
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		s := ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: afInet, Protocol: ipvs.TCP, Addr: a, Port: 80}, Scheduler: "wlc", Netmask: 0xffffffff}
		ds := make([]ipvs.DestEntry, m)
		for j := range m {
			ds[j] = ipvs.DestEntry{Destination: ipvs.Destination{DestKey: ipvs.DestKey{Addr: netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(j)}), Port: 80}, Forward: ipvs.Route, Weight: 1}}
		}
		tb.Services[i] = ipvs.ServiceEntry{Service: s, Dests: ds}
	}
	return tb
}

func TestDiffLargeTableOneChange(t *testing.T) {
	desired, current := bigTable(10000, 10), bigTable(10000, 10)
	desired.Services[4321].Dests[3].Weight = 9
	owned := Ownership{}
	for _, s := range current.Services {
		owned[s.ServiceKey] = true
	}
	start := time.Now()
	ops := Diff(desired, current, owned)
	elapsed := time.Since(start)
	if len(ops) != 1 || ops[0].Kind != ipvs.EditDest || ops[0].Dest.Weight != 9 {
		t.Fatalf("ops = %s", formatOps(ops))
	}
	t.Logf("10,000 x 10 diff with one change: %v", elapsed)
}

func BenchmarkDiff(b *testing.B) {
	desired, current := bigTable(10000, 10), bigTable(10000, 10)
	desired.Services[4321].Dests[3].Weight = 9
	owned := Ownership{}
	for _, s := range current.Services {
		owned[s.ServiceKey] = true
	}
	b.ReportAllocs()
	for b.Loop() {
		if ops := Diff(desired, current, owned); len(ops) != 1 {
			b.Fatal(len(ops))
		}
	}
}

func BenchmarkDiffFromEmpty(b *testing.B) {
	desired := bigTable(10000, 10)
	b.ReportAllocs()
	for b.Loop() {
		if ops := Diff(desired, &ipvs.Table{}, nil); len(ops) != 110000 {
			b.Fatal(len(ops))
		}
	}
}
