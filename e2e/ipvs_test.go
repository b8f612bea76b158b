//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mobyipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/lab/topo"
)

const (
	af4 = unix.AF_INET
	af6 = unix.AF_INET6
)

// ipvsHost gives the test a director namespace and an IPVS client in it.
func ipvsHost(t *testing.T) (*topo.Host, *ipvs.Client) {
	t.Helper()
	modprobe(t, "ip_vs")
	l := topo.New(t)
	lan := l.Net("lan", "10.1.0.0/24")
	dir := l.Host("dir", topo.On(lan, "10.1.0.1"))
	var c *ipvs.Client
	if err := dir.Do(func() error {
		var err error
		c, err = ipvs.Open()
		return err
	}); err != nil {
		t.Fatalf("open IPVS client in the director namespace: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return dir, c
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func svc4(proto ipvs.Protocol, addr string, port uint16, sched string) ipvs.Service {
	return ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: af4, Protocol: proto, Addr: netip.MustParseAddr(addr), Port: port},
		Scheduler: sched, Netmask: 0xffffffff}
}

func dst(addr string, port uint16, fwd ipvs.Forward, w int32) ipvs.Destination {
	return ipvs.Destination{DestKey: ipvs.DestKey{Addr: netip.MustParseAddr(addr), Port: port}, Forward: fwd, Weight: w}
}

// wantTable is a desired table: services and their real servers.
type wantTable map[ipvs.ServiceKey]struct {
	svc   ipvs.Service
	dests []ipvs.Destination
}

func opsFor(w []struct {
	svc   ipvs.Service
	dests []ipvs.Destination
}) []ipvs.Op {
	var ops []ipvs.Op
	for _, s := range w {
		ops = append(ops, ipvs.Op{Kind: ipvs.AddService, Service: s.svc})
		for _, d := range s.dests {
			ops = append(ops, ipvs.Op{Kind: ipvs.AddDest, Service: s.svc, Dest: d})
		}
	}
	return ops
}

// compareTable checks that the kernel holds exactly want.
func compareTable(t *testing.T, got *ipvs.Table, want wantTable) {
	t.Helper()
	if len(got.Services) != len(want) {
		t.Errorf("kernel holds %d services, want %d", len(got.Services), len(want))
	}
	for _, s := range got.Services {
		w, ok := want[s.ServiceKey]
		if !ok {
			t.Errorf("unexpected service %s", s.ServiceKey)
			continue
		}
		if !s.Service.Equal(w.svc) {
			t.Errorf("service %s:\n got %+v\nwant %+v", s.ServiceKey, s.Service, w.svc)
		}
		if len(s.Dests) != len(w.dests) {
			t.Errorf("service %s has %d real servers, want %d", s.ServiceKey, len(s.Dests), len(w.dests))
		}
		for _, d := range s.Dests {
			i := slices.IndexFunc(w.dests, func(x ipvs.Destination) bool { return x.DestKey == d.DestKey })
			if i < 0 {
				t.Errorf("service %s: unexpected real server %s", s.ServiceKey, d.DestKey)
			} else if !d.Destination.Equal(w.dests[i]) {
				t.Errorf("service %s real server %s:\n got %+v\nwant %+v", s.ServiceKey, d.DestKey, d.Destination, w.dests[i])
			}
		}
	}
}

// checkThresholds checks the thresholds ipvsadm -Ln --thresholds shows for
// the real server addr of the TCP service vip. Its lines read, for example,
//
//	"TCP  10.1.0.100:80 wlc"
//	"  -> 10.2.0.15:80                  100        10         0        0"
//
// (real server, Uthreshold, Lthreshold, ActConn, InActConn).
func checkThresholds(t *testing.T, dir *topo.Host, vip, addr, upper, lower string) {
	t.Helper()
	out := dir.MustRun(t, "ipvsadm", "-Ln", "--thresholds")
	in := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] != "->" {
			in = f[0] == "TCP" && f[1] == vip
			continue
		}
		if in && len(f) >= 4 && f[0] == "->" && f[1] == addr {
			if f[2] != upper || f[3] != lower {
				t.Errorf("ipvsadm -Ln --thresholds shows %s of %s with thresholds %s/%s, want %s/%s:\n%s", addr, vip, f[2], f[3], upper, lower, out)
			}
			return
		}
	}
	t.Errorf("ipvsadm -Ln --thresholds does not list %s under TCP %s:\n%s", addr, vip, out)
}

// hasLine reports whether a line of text contains every part.
func hasLine(text string, parts ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func schedulers(t *testing.T) []string {
	t.Helper()
	kver, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("/lib/modules", strings.TrimSpace(string(kver)), "kernel/net/netfilter/ipvs")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		name, _, _ := strings.Cut(e.Name(), ".ko")
		s, ok := strings.CutPrefix(name, "ip_vs_")
		if !ok || strings.HasPrefix(s, "ftp") || strings.HasPrefix(s, "pe_") {
			continue
		}
		out = append(out, s)
	}
	if !slices.Contains(out, "wlc") {
		t.Fatalf("no scheduler modules found in %s: %v", dir, out)
	}
	return out
}

func TestIPVSClientEveryKind(t *testing.T) {
	dir, c := ipvsHost(t)
	ctx := ctxT(t, time.Minute)

	type entry = struct {
		svc   ipvs.Service
		dests []ipvs.Destination
	}
	persist24 := svc4(0, "10.1.0.100", 0, "rr")
	persist24.ServiceKey = ipvs.ServiceKey{Family: af4, FWMark: 10}
	persist24.Flags, persist24.Timeout, persist24.Netmask = ipvs.FlagPersistent, 360, 0xffffff00
	fwm6 := ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: af6, FWMark: 11}, Scheduler: "wrr",
		Flags: ipvs.FlagPersistent, Timeout: 60, Netmask: 64}
	v6 := ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: af6, Protocol: ipvs.TCP, Addr: netip.MustParseAddr("2001:db8::100"), Port: 443},
		Scheduler: "sh", Flags: ipvs.FlagSched1 | ipvs.FlagSched2, Netmask: 128}
	mh := svc4(ipvs.TCP, "10.1.0.101", 80, "mh")
	mh.Flags = ipvs.FlagSched1 | ipvs.FlagSched2
	onePacket := svc4(ipvs.UDP, "10.1.0.101", 53, "rr")
	onePacket.Flags = ipvs.FlagOnePacket
	gue := dst("10.2.0.13", 80, ipvs.Tunnel, 10)
	gue.TunType, gue.TunPort, gue.TunFlags = ipvs.TunGUE, 6080, 1
	gre := dst("10.2.0.14", 80, ipvs.Tunnel, 10)
	gre.TunType = ipvs.TunGRE
	thresh := dst("10.2.0.15", 80, ipvs.Route, 3)
	thresh.UpperThreshold, thresh.LowerThreshold = 100, 10

	entries := []entry{
		{svc4(ipvs.TCP, "10.1.0.100", 80, "wlc"), []ipvs.Destination{dst("10.2.0.11", 80, ipvs.Route, 100), dst("10.2.0.12", 80, ipvs.Route, 0), thresh}},
		{svc4(ipvs.UDP, "10.1.0.100", 53, "rr"), []ipvs.Destination{dst("10.2.0.11", 5353, ipvs.Masq, 1)}},
		{svc4(ipvs.SCTP, "10.1.0.100", 3868, "lc"), []ipvs.Destination{dst("10.2.0.11", 3868, ipvs.Route, 1)}},
		{svc4(ipvs.TCP, "10.1.0.102", 80, "rr"), []ipvs.Destination{dst("10.2.0.12", 80, ipvs.Tunnel, 1), gue, gre}},
		{persist24, []ipvs.Destination{dst("10.2.0.11", 0, ipvs.Route, 1), dst("10.2.0.12", 0, ipvs.Route, 1)}},
		{fwm6, []ipvs.Destination{dst("2001:db8:2::11", 0, ipvs.Route, 5)}},
		{v6, []ipvs.Destination{dst("2001:db8:2::11", 443, ipvs.Route, 1), dst("2001:db8:2::12", 8443, ipvs.Masq, 2)}},
		{mh, []ipvs.Destination{dst("10.2.0.11", 80, ipvs.Route, 1)}},
		{onePacket, []ipvs.Destination{dst("10.2.0.11", 53, ipvs.Route, 1)}},
	}
	for i, s := range schedulers(t) {
		entries = append(entries, entry{svc4(ipvs.TCP, fmt.Sprintf("10.1.1.%d", i+1), 80, s),
			[]ipvs.Destination{dst("10.2.0.11", 80, ipvs.Route, 1)}})
	}
	want := wantTable{}
	for _, e := range entries {
		want[e.svc.ServiceKey] = e
	}
	if err := c.Apply(ctx, opsFor(entries)); err != nil {
		t.Fatal(err)
	}
	got, err := c.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	compareTable(t, got, want)

	// ipvsadm, an independent reader, agrees on what the kernel holds.
	save := dir.MustRun(t, "ipvsadm", "-Sn")
	t.Logf("ipvsadm -Sn:\n%s", save)
	for _, parts := range [][]string{
		{"-A -f 10 ", "-s rr", "-p 360", "-M 255.255.255.0"},
		{"-A -t 10.1.0.100:80 -s wlc"},
		{"-A -u 10.1.0.100:53 -s rr"},
		{"-A --sctp-service 10.1.0.100:3868 -s lc"},
		{"-a -u 10.1.0.100:53 -r 10.2.0.11:5353 -m -w 1"},
		{"-a -t 10.1.0.100:80 -r 10.2.0.15:80 -g -w 3"},
		{"-a -t 10.1.0.100:80 -r 10.2.0.12:80 -g -w 0"},
		{"-A -t [2001:db8::100]:443 -s sh", "-b "},
		{"-a -t [2001:db8::100]:443 -r [2001:db8:2::12]:8443 -m -w 2"},
		{"-A -f 11 ", "-s wrr", "-p 60", "-M 64"},
		{"-A -t 10.1.0.101:80 -s mh", "-b "},
		{"-A -u 10.1.0.101:53 -s rr", " -o"},
		{"-a -t 10.1.0.102:80 -r 10.2.0.12:80 -i -w 1"},
	} {
		if !hasLine(save, parts...) {
			t.Errorf("ipvsadm -Sn has no line with %q", parts)
		}
	}
	if help, _ := dir.Run(t, "ipvsadm", "-h"); strings.Contains(help, "tun-type") {
		if !hasLine(save, "-r 10.2.0.13:80 -i -w 10 --tun-type gue --tun-port 6080") {
			t.Errorf("ipvsadm -Sn lacks the GUE tunnel of 10.2.0.13")
		}
	}
	// ipvsadm -Sn writes no thresholds (its real output for this server
	// is "-a -t 10.1.0.100:80 -r 10.2.0.15:80 -g -w 3"); -Ln --thresholds
	// shows them in the columns Uthreshold and Lthreshold.
	checkThresholds(t, dir, "10.1.0.100:80", "10.2.0.15:80", "100", "10")
	pc := dir.MustRun(t, "ipvsadm", "-Ln", "--persistent-conn")
	if !hasLine(pc, "FWM  10 rr", "persistent 360 mask 255.255.255.0") {
		t.Errorf("ipvsadm -Ln --persistent-conn lacks the /24 persistence mask:\n%s", pc)
	}

	// moby/ipvs, another independent reader, sees the same services and
	// weights.
	var mobySvcs []*mobyipvs.Service
	mobyDests := map[string][]*mobyipvs.Destination{}
	if err := dir.Do(func() error {
		h, err := mobyipvs.New("")
		if err != nil {
			return err
		}
		defer h.Close()
		mobySvcs, err = h.GetServices()
		if err != nil {
			return err
		}
		for _, s := range mobySvcs {
			ds, err := h.GetDestinations(s)
			if err != nil {
				return err
			}
			mobyDests[fmt.Sprint(s.FWMark, s.Address, s.Port, s.Protocol)] = ds
		}
		return nil
	}); err != nil {
		t.Fatalf("moby/ipvs reader: %v", err)
	}
	if len(mobySvcs) != len(want) {
		t.Errorf("moby/ipvs sees %d services, want %d", len(mobySvcs), len(want))
	}
	total := 0
	for _, ds := range mobyDests {
		total += len(ds)
	}
	wantDests := 0
	for _, e := range entries {
		wantDests += len(e.dests)
	}
	if total != wantDests {
		t.Errorf("moby/ipvs sees %d real servers, want %d", total, wantDests)
	}

	// Edit a service and a real server.
	edited := entries[0].svc
	edited.Scheduler, edited.Flags, edited.Timeout, edited.Netmask = "rr", ipvs.FlagPersistent, 120, 0xffff0000
	w5 := entries[0].dests[0]
	w5.Weight, w5.UpperThreshold = 5, 50
	if err := c.Apply(ctx, []ipvs.Op{
		{Kind: ipvs.EditService, Service: edited},
		{Kind: ipvs.EditDest, Service: edited, Dest: w5},
	}); err != nil {
		t.Fatal(err)
	}
	e0 := want[edited.ServiceKey]
	e0.svc = edited
	e0.dests = slices.Clone(e0.dests)
	e0.dests[0] = w5
	want[edited.ServiceKey] = e0
	got, err = c.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	compareTable(t, got, want)
	save = dir.MustRun(t, "ipvsadm", "-Sn")
	for _, parts := range [][]string{{"-A -t 10.1.0.100:80 -s rr", "-p 120", "-M 255.255.0.0"}, {"-a -t 10.1.0.100:80 -r 10.2.0.11:80 -g -w 5"}} {
		if !hasLine(save, parts...) {
			t.Errorf("after edit, ipvsadm -Sn has no line with %q:\n%s", parts, save)
		}
	}
	checkThresholds(t, dir, "10.1.0.100:80", "10.2.0.11:80", "50", "0")

	// Delete a real server and a whole service.
	if err := c.Apply(ctx, []ipvs.Op{
		{Kind: ipvs.DelDest, Service: edited, Dest: w5},
		{Kind: ipvs.DelService, Service: fwm6},
	}); err != nil {
		t.Fatal(err)
	}
	e0.dests = e0.dests[1:]
	want[edited.ServiceKey] = e0
	delete(want, fwm6.ServiceKey)
	got, err = c.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	compareTable(t, got, want)
	if list := dir.MustRun(t, "ipvsadm", "-Ln"); strings.Contains(list, "FWM  11") || strings.Contains(list, "10.2.0.11:80         Route   5") {
		t.Errorf("ipvsadm -Ln still shows deleted entries:\n%s", list)
	}
}

func TestIPVSClientErrors(t *testing.T) {
	_, c := ipvsHost(t)
	ctx := ctxT(t, time.Minute)
	a := svc4(ipvs.TCP, "10.1.0.100", 80, "rr")
	b := svc4(ipvs.TCP, "10.1.0.100", 81, "rr")
	if err := c.Apply(ctx, []ipvs.Op{{Kind: ipvs.AddService, Service: a}}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		ops   []ipvs.Op
		index int
		want  error
	}{
		{"duplicate service", []ipvs.Op{{Kind: ipvs.AddService, Service: b}, {Kind: ipvs.AddService, Service: a}}, 1, unix.EEXIST},
		{"real server of a missing service", []ipvs.Op{{Kind: ipvs.AddDest, Service: svc4(ipvs.UDP, "10.9.9.9", 1, "rr"), Dest: dst("10.2.0.1", 1, ipvs.Route, 1)}}, 0, unix.ESRCH},
		{"missing real server", []ipvs.Op{{Kind: ipvs.DelDest, Service: a, Dest: dst("10.2.0.99", 80, ipvs.Route, 1)}}, 0, unix.ENOENT},
		// Scheduler modules are loaded before anything is sent, so a missing
		// one is found there (the kernel would have said ENOENT).
		{"unknown scheduler", []ipvs.Op{{Kind: ipvs.AddService, Service: svc4(ipvs.TCP, "10.1.0.100", 82, "nosuch")}}, 0, ipvs.ErrModule},
		{"duplicate real server", []ipvs.Op{
			{Kind: ipvs.AddDest, Service: a, Dest: dst("10.2.0.11", 80, ipvs.Route, 1)},
			{Kind: ipvs.AddDest, Service: a, Dest: dst("10.2.0.11", 80, ipvs.Route, 1)},
		}, 1, unix.EEXIST},
	}
	for _, tc := range cases {
		err := c.Apply(ctx, tc.ops)
		var oe *ipvs.OpError
		if !errors.As(err, &oe) || oe.Index != tc.index || !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v at op %d", tc.name, err, tc.want, tc.index)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
	}
	// The ops before a failure stay applied.
	tab, err := c.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range tab.Services {
		keys = append(keys, fmt.Sprintf("%s dests=%d", s.ServiceKey, len(s.Dests)))
	}
	slices.Sort(keys)
	if got := strings.Join(keys, "; "); got != "TCP 10.1.0.100:80 dests=1; TCP 10.1.0.100:81 dests=0" {
		t.Errorf("table after failed batches: %s", got)
	}

	// An op that cannot be encoded fails the batch before anything is
	// sent.
	bad := []ipvs.Op{{Kind: ipvs.AddService, Service: svc4(ipvs.TCP, "10.1.0.100", 90, "rr")},
		{Kind: ipvs.AddService, Service: ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: af4, Protocol: ipvs.TCP, Port: 91}}}}
	if err := c.Apply(ctx, bad); err == nil {
		t.Fatal("invalid op accepted")
	}
	if tab, _ := c.Table(ctx); len(tab.Services) != 2 {
		t.Errorf("a rejected batch changed the table: %d services", len(tab.Services))
	}
}

func TestIPVSInfoAndTimeouts(t *testing.T) {
	dir, c := ipvsHost(t)
	ctx := ctxT(t, time.Minute)
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head := dir.MustRun(t, "cat", "/proc/net/ip_vs")
	want := fmt.Sprintf("IP Virtual Server version %s (size=%d)", info.VersionString(), info.ConnTableSize)
	if !strings.HasPrefix(head, want) {
		t.Errorf("Info gives %q, /proc/net/ip_vs says:\n%s", want, head)
	}
	set := ipvs.Timeouts{TCP: 900 * time.Second, TCPFin: 30 * time.Second, UDP: 45 * time.Second}
	if err := c.SetTimeouts(ctx, set); err != nil {
		t.Fatal(err)
	}
	got, err := c.Timeouts(ctx)
	if err != nil || got != set {
		t.Fatalf("timeouts read back %+v, %v; want %+v", got, err, set)
	}
	if out := dir.MustRun(t, "ipvsadm", "-L", "--timeout"); !hasLine(out, "Timeout (tcp tcpfin udp): 900 30 45") {
		t.Errorf("ipvsadm --timeout: %s", out)
	}
}

// bulkTable is n services of 10 real servers each, as ops and as an
// ipvsadm -R script.
func bulkTable(n int) ([]ipvs.Op, string) {
	var ops []ipvs.Op
	var script strings.Builder
	for i := range n {
		svc := svc4(ipvs.TCP, fmt.Sprintf("10.%d.%d.%d", 100+i/65536, i/256%256, i%256), 80, "wlc")
		ops = append(ops, ipvs.Op{Kind: ipvs.AddService, Service: svc})
		fmt.Fprintf(&script, "-A -t %s:80 -s wlc\n", svc.Addr)
		for j := range 10 {
			d := dst(fmt.Sprintf("10.200.%d.%d", j, i%250+1), 80, ipvs.Route, int32(j+1))
			ops = append(ops, ipvs.Op{Kind: ipvs.AddDest, Service: svc, Dest: d})
			fmt.Fprintf(&script, "-a -t %s:80 -r %s:80 -g -w %d\n", svc.Addr, d.Addr, d.Weight)
		}
	}
	return ops, script.String()
}

func TestIPVSBulk1000x10(t *testing.T) {
	dir, c := ipvsHost(t)
	ctx := ctxT(t, 5*time.Minute)
	ops, script := bulkTable(1000)

	start := time.Now()
	if err := c.Apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
	applyTook := time.Since(start)

	start = time.Now()
	tab, err := c.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tableTook := time.Since(start)
	n := 0
	for _, s := range tab.Services {
		if len(s.Dests) != 10 {
			t.Errorf("%s has %d real servers", s.ServiceKey, len(s.Dests))
		}
		n += 1 + len(s.Dests)
	}
	if len(tab.Services) != 1000 || n != len(ops) {
		t.Fatalf("read back %d services, %d objects; want 1000, %d", len(tab.Services), n, len(ops))
	}

	start = time.Now()
	list := dir.MustRun(t, "ipvsadm", "-Ln")
	listTook := time.Since(start)
	if got := strings.Count(list, "-> 10.200."); got != 10000 {
		t.Errorf("ipvsadm -Ln lists %d real servers", got)
	}

	// Delete everything through the client, then let ipvsadm -R build
	// the same table for comparison, in a namespace of its own: real
	// servers deleted here wait in the kernel's trash list, which every
	// later add in this namespace searches, so a second build here would
	// be slower than a first one.
	var del []ipvs.Op
	for _, s := range tab.Services {
		del = append(del, ipvs.Op{Kind: ipvs.DelService, Service: s.Service})
	}
	start = time.Now()
	if err := c.Apply(ctx, del); err != nil {
		t.Fatal(err)
	}
	delTook := time.Since(start)
	if tab, err := c.Table(ctx); err != nil || len(tab.Services) != 0 {
		t.Fatalf("after deleting all: %d services, %v", len(tab.Services), err)
	}

	dir2, c2 := ipvsHost(t)
	restore := dir2.Command(ctx, "ipvsadm", "-R")
	restore.Stdin = strings.NewReader(script)
	start = time.Now()
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("ipvsadm -R: %v: %s", err, out)
	}
	restoreTook := time.Since(start)
	again, err := c2.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Services) != 1000 {
		t.Fatalf("ipvsadm -R built %d services", len(again.Services))
	}

	t.Logf("1,000 services x 10 real servers (%d objects):", len(ops))
	t.Logf("  Client.Apply from empty: %v (ipvsadm -R: %v, %.1fx faster)", applyTook, restoreTook, restoreTook.Seconds()/applyTook.Seconds())
	t.Logf("  Client.Table: %v (ipvsadm -Ln: %v, %.1fx faster)", tableTook, listTook, listTook.Seconds()/tableTook.Seconds())
	t.Logf("  Client.Apply of 1,000 service deletes: %v", delTook)
	if applyTook >= restoreTook {
		t.Errorf("pipelined Apply (%v) is not faster than ipvsadm -R (%v)", applyTook, restoreTook)
	}
	if tableTook >= listTook {
		t.Errorf("Table (%v) is not faster than ipvsadm -Ln (%v)", tableTook, listTook)
	}
}

// TestIPVSNewSchedulerWhileNamespacesDie adds services whose scheduler
// module is not loaded right after a namespace holding IPVS services was
// deleted. Left to the kernel, the module is loaded under the IPVS mutex
// and its init (lblc, lblcr register per-namespace state) waits for the
// namespace lock that the dying namespace's cleanup holds while it waits
// for the IPVS mutex: the kernel's IPVS hangs. Client.Apply loads the
// module first, outside every IPVS lock.
func TestIPVSNewSchedulerWhileNamespacesDie(t *testing.T) {
	modprobe(t, "ip_vs")
	for _, sched := range []string{"lblc", "lblcr"} {
		mod := "ip_vs_" + sched
		deadline := time.Now().Add(20 * time.Second)
		for moduleLoaded(t, mod) {
			if time.Now().After(deadline) {
				t.Fatalf("%s stays loaded (in use?): cannot test loading it", mod)
			}
			_ = exec.Command("rmmod", mod).Run()
			time.Sleep(100 * time.Millisecond)
		}
		t.Run("dying namespace before "+sched, func(t *testing.T) {
			_, c := ipvsHost(t)
			var ops []ipvs.Op
			for i := range 50 {
				s := svc4(ipvs.TCP, fmt.Sprintf("10.1.2.%d", i+1), 80, "rr")
				ops = append(ops, ipvs.Op{Kind: ipvs.AddService, Service: s},
					ipvs.Op{Kind: ipvs.AddDest, Service: s, Dest: dst("10.2.0.11", 80, ipvs.Route, 1)})
			}
			if err := c.Apply(ctxT(t, time.Minute), ops); err != nil {
				t.Fatal(err)
			}
		}) // its namespace is deleted here; the kernel cleans it up in the background
		_, c := ipvsHost(t)
		s := svc4(ipvs.TCP, "10.1.3.1", 80, sched)
		if err := c.Apply(ctxT(t, time.Minute), []ipvs.Op{{Kind: ipvs.AddService, Service: s}}); err != nil {
			t.Fatalf("add a %s service: %v", sched, err)
		}
		if !moduleLoaded(t, mod) {
			t.Fatalf("%s not loaded after adding a %s service", mod, sched)
		}
	}
}
