package ipvs_test

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvsadm"
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

// formatWithStats prints t as ipvsadm-save lines in its order, each with
// the counters a snapshot carries, and whether the hashed flag is set.
func formatWithStats(t *ipvs.Table) string {
	var b strings.Builder
	for _, s := range t.Services {
		fmt.Fprintf(&b, "%s conns=%d hashed=%t\n", ipvsadm.FormatOp(ipvs.Op{Kind: ipvs.AddService, Service: s.Service}), s.Stats.Conns, s.Flags&ipvs.FlagHashed != 0)
		for _, d := range s.Dests {
			fmt.Fprintf(&b, "%s conns=%d active=%d\n", ipvsadm.FormatOp(ipvs.Op{Kind: ipvs.AddDest, Service: s.Service, Dest: d.Destination}), d.Stats.Conns, d.ActiveConns)
		}
	}
	return b.String()
}

func TestApplyOps(t *testing.T) {
	web := svc("10.0.0.1", 80, "wlc")
	web.Flags = ipvs.FlagHashed
	api := svc("10.0.0.1", 8080, "rr")
	api.Flags = ipvs.FlagHashed
	// A mark service as the kernel reports it (protocol TCP), addressed by
	// operations with the normalised key.
	markKernel := ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: unix.AF_INET, Protocol: ipvs.TCP, FWMark: 7}, Scheduler: "sh", Flags: ipvs.FlagHashed, Netmask: 0xffffffff}
	mark := markKernel
	mark.ServiceKey = ipvs.NormKey(mark.ServiceKey)
	withStats := func(d ipvs.DestEntry, conns uint64, active uint32) ipvs.DestEntry {
		d.Stats.Conns, d.ActiveConns = conns, active
		return d
	}
	base := func() *ipvs.Table {
		w := entry(web, withStats(dest("10.0.0.11", 80, 100), 40, 3), withStats(dest("10.0.0.12", 80, 100), 2, 0))
		w.Stats.Conns = 42
		m := entry(markKernel, withStats(dest("10.0.0.21", 0, 1), 5, 1))
		m.Stats.Conns = 5
		a := entry(api, dest("10.1.0.11", 9000, 1))
		return table(w, m, a)
	}
	const baseText = "-A -t 10.0.0.1:80 -s wlc conns=42 hashed=true\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 100 conns=40 active=3\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.12:80 -g -w 100 conns=2 active=0\n" +
		"-A -f 7 -s sh conns=5 hashed=true\n" +
		"-a -f 7 -r 10.0.0.21:0 -g -w 1 conns=5 active=1\n" +
		"-A -t 10.0.0.1:8080 -s rr conns=0 hashed=true\n" +
		"-a -t 10.0.0.1:8080 -r 10.1.0.11:9000 -g -w 1 conns=0 active=0\n"
	if got := formatWithStats(base()); got != baseText {
		t.Fatalf("base:\n%s", got)
	}
	newSvc := svc("10.0.0.2", 53, "rr")
	newSvc.Protocol = ipvs.UDP
	webRR := web
	webRR.Scheduler, webRR.Flags = "rr", 0 // operations carry no hashed flag
	d11 := dest("10.0.0.11", 80, 7).Destination
	d13 := dest("10.0.0.13", 80, 100).Destination
	d21 := dest("10.0.0.21", 0, 9).Destination

	for _, tc := range []struct {
		name string
		ops  []ipvs.Op
		want string
	}{
		{"no ops", nil, baseText},
		{"weight change keeps counters", []ipvs.Op{{Kind: ipvs.EditDest, Service: web, Dest: d11}},
			strings.Replace(baseText, "10.0.0.11:80 -g -w 100 conns=40", "10.0.0.11:80 -g -w 7 conns=40", 1)},
		{"new server starts at zero", []ipvs.Op{{Kind: ipvs.AddDest, Service: web, Dest: d13}},
			strings.Replace(baseText, "-A -f 7", "-a -t 10.0.0.1:80 -r 10.0.0.13:80 -g -w 100 conns=0 active=0\n-A -f 7", 1)},
		{"server deleted", []ipvs.Op{{Kind: ipvs.DelDest, Service: web, Dest: d11}},
			strings.Replace(baseText, "-a -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 100 conns=40 active=3\n", "", 1)},
		{"service edited keeps counters and servers", []ipvs.Op{{Kind: ipvs.EditService, Service: webRR}},
			strings.Replace(baseText, "-A -t 10.0.0.1:80 -s wlc", "-A -t 10.0.0.1:80 -s rr", 1)},
		{"service deleted with its servers", []ipvs.Op{
			{Kind: ipvs.DelDest, Service: web, Dest: d11}, {Kind: ipvs.DelDest, Service: web, Dest: dest("10.0.0.12", 80, 0).Destination},
			{Kind: ipvs.DelService, Service: web}},
			baseText[strings.Index(baseText, "-A -f 7"):]},
		{"service added last, hashed, at zero", []ipvs.Op{
			{Kind: ipvs.AddService, Service: newSvc}, {Kind: ipvs.AddDest, Service: newSvc, Dest: dest("10.0.0.31", 53, 1).Destination}},
			baseText + "-A -u 10.0.0.2:53 -s rr conns=0 hashed=true\n-a -u 10.0.0.2:53 -r 10.0.0.31:53 -g -w 1 conns=0 active=0\n"},
		{"mark service found by its normalised key", []ipvs.Op{{Kind: ipvs.EditDest, Service: mark, Dest: d21}},
			strings.Replace(baseText, "-a -f 7 -r 10.0.0.21:0 -g -w 1 conns=5", "-a -f 7 -r 10.0.0.21:0 -g -w 9 conns=5", 1)},
		{"deleted then added again starts at zero", []ipvs.Op{
			{Kind: ipvs.DelDest, Service: mark, Dest: d21}, {Kind: ipvs.DelService, Service: mark},
			{Kind: ipvs.AddService, Service: mark}, {Kind: ipvs.AddDest, Service: mark, Dest: d21}},
			strings.Replace(baseText, "-A -f 7 -s sh conns=5 hashed=true\n-a -f 7 -r 10.0.0.21:0 -g -w 1 conns=5 active=1\n", "", 1) +
				"-A -f 7 -s sh conns=0 hashed=true\n-a -f 7 -r 10.0.0.21:0 -g -w 9 conns=0 active=0\n"},
		{"operations the kernel refuses change nothing", []ipvs.Op{
			{Kind: ipvs.AddService, Service: webRR},                                          // exists
			{Kind: ipvs.AddDest, Service: web, Dest: d11},                                    // exists
			{Kind: ipvs.EditDest, Service: web, Dest: d13},                                   // no such server
			{Kind: ipvs.DelDest, Service: web, Dest: d13},                                    // no such server
			{Kind: ipvs.EditService, Service: newSvc},                                        // no such service
			{Kind: ipvs.DelService, Service: newSvc},                                         // no such service
			{Kind: ipvs.AddDest, Service: newSvc, Dest: d13},                                 // no such service
			{Kind: ipvs.EditDest, Service: newSvc, Dest: d13},                                // no such service
			{Kind: ipvs.DelDest, Service: newSvc, Dest: d13},                                 // no such service
			{Kind: ipvs.AddDest, Service: api, Dest: dest("10.1.0.11", 9000, 5).Destination}, // exists
		}, baseText},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			got := ipvs.ApplyOps(in, tc.ops, nil)
			if s := formatWithStats(got); s != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", s, tc.want)
			}
			if s := formatWithStats(in); s != baseText {
				t.Errorf("input modified:\n%s", s)
			}
			// One by one (searching linearly) and all at once (with an
			// index when there are many) agree.
			step := in
			for _, op := range tc.ops {
				step = ipvs.ApplyOps(step, []ipvs.Op{op}, nil)
			}
			if s := formatWithStats(step); s != tc.want {
				t.Errorf("one by one:\n%s\nwant:\n%s", s, tc.want)
			}
		})
	}
	if got := ipvs.ApplyOps(nil, []ipvs.Op{{Kind: ipvs.AddService, Service: newSvc}}, nil); formatWithStats(got) != "-A -u 10.0.0.2:53 -s rr conns=0 hashed=true\n" {
		t.Errorf("from nil:\n%s", formatWithStats(got))
	}
}

// BenchmarkApplyOpsOne measures updating the view of a 10,000 x 10 table
// with one operation.
func BenchmarkApplyOpsOne(b *testing.B) {
	t := bigTable(10000, 10)
	op := ipvs.Op{Kind: ipvs.EditDest, Service: t.Services[9999].Service, Dest: t.Services[9999].Dests[9].Destination}
	op.Dest.Weight = 5
	b.ReportAllocs()
	for b.Loop() {
		ipvs.ApplyOps(t, []ipvs.Op{op}, nil)
	}
}

func bigTable(n, m int) *ipvs.Table {
	tb := &ipvs.Table{Services: make([]ipvs.ServiceEntry, n)}
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		s := ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: unix.AF_INET, Protocol: ipvs.TCP, Addr: a, Port: 80}, Scheduler: "wlc", Netmask: 0xffffffff}
		ds := make([]ipvs.DestEntry, m)
		for j := range m {
			ds[j] = ipvs.DestEntry{Destination: ipvs.Destination{DestKey: ipvs.DestKey{Addr: netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(j)}), Port: 80}, Forward: ipvs.Route, Weight: 1}}
		}
		tb.Services[i] = ipvs.ServiceEntry{Service: s, Dests: ds}
	}
	return tb
}

// TestApplyOpsRefusals checks the errno reported for each operation the
// kernel refuses, with the operation's position.
func TestApplyOpsRefusals(t *testing.T) {
	web := svc("10.0.0.1", 80, "wlc")
	other := svc("10.0.0.2", 80, "wlc")
	d11, d13 := dest("10.0.0.11", 80, 1).Destination, dest("10.0.0.13", 80, 1).Destination
	noSched := web
	noSched.Scheduler = ""
	v6 := svc("2001:db8::1", 80, "rr")
	v6.Netmask = 0
	base := table(entry(web, dest("10.0.0.11", 80, 1)))
	ops := []ipvs.Op{
		{Kind: ipvs.AddService, Service: web},           // 0 EEXIST
		{Kind: ipvs.AddDest, Service: web, Dest: d11},   // 1 EEXIST
		{Kind: ipvs.EditDest, Service: web, Dest: d13},  // 2 ENOENT
		{Kind: ipvs.DelDest, Service: web, Dest: d13},   // 3 ENOENT
		{Kind: ipvs.EditService, Service: other},        // 4 ESRCH
		{Kind: ipvs.AddDest, Service: other, Dest: d13}, // 5 ESRCH
		{Kind: ipvs.DelService, Service: other},         // 6 ESRCH
		{Kind: ipvs.EditService, Service: noSched},      // 7 EINVAL
		{Kind: ipvs.AddService, Service: v6},            // 8 EINVAL
		{Kind: ipvs.EditDest, Service: web, Dest: d11},  // 9 fine
	}
	want := []syscall.Errno{syscall.EEXIST, syscall.EEXIST, syscall.ENOENT, syscall.ENOENT, syscall.ESRCH, syscall.ESRCH, syscall.ESRCH, syscall.EINVAL, syscall.EINVAL}
	var got []string
	out := ipvs.ApplyOps(base, ops, func(i int, err error) {
		var errno syscall.Errno
		for e := err; e != nil; {
			if x, ok := e.(syscall.Errno); ok {
				errno = x
				break
			}
			u, ok := e.(interface{ Unwrap() error })
			if !ok {
				break
			}
			e = u.Unwrap()
		}
		got = append(got, fmt.Sprintf("%d:%v", i, errno))
	})
	var wantS []string
	for i, e := range want {
		wantS = append(wantS, fmt.Sprintf("%d:%v", i, e))
	}
	if strings.Join(got, " ") != strings.Join(wantS, " ") {
		t.Errorf("refusals:\n%s\nwant:\n%s", strings.Join(got, " "), strings.Join(wantS, " "))
	}
	if len(out.Services) != 1 || len(out.Services[0].Dests) != 1 {
		t.Errorf("refused operations changed the table: %+v", out)
	}
}
