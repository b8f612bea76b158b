package director

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

type rig struct {
	k      *fakeKernel
	m      *fakeMarker
	s      *fakeSysctls
	a      *fakeAddrs
	dir    string
	engine *Engine
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{
		k: newFakeKernel(),
		m: &fakeMarker{},
		s: newFakeSysctls(map[string]string{
			"net/ipv4/ip_forward":                   "0",
			"net/ipv6/conf/all/forwarding":          "0",
			"net/ipv4/vs/expire_nodest_conn":        "0",
			"net/ipv4/vs/expire_quiescent_template": "0",
			"net/ipv4/vs/conn_reuse_mode":           "1",
		}),
		a:   &fakeAddrs{},
		dir: t.TempDir(),
	}
	r.restart()
	return r
}

// restart gives the rig a new Engine over the same kernel and state dir,
// as a restarted daemon would have.
func (r *rig) restart() {
	r.engine = NewEngine(r.dir, Deps{Kernel: r.k, Marker: r.m, Sysctls: r.s, Addrs: r.a})
}

func (r *rig) config(t *testing.T, body string) *Config {
	t.Helper()
	cfg, _, err := ParseConfig("d.yaml", []byte("director:\n  state_dir: "+r.dir+"\n"+body))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (r *rig) apply(t *testing.T, cfg *Config) []ipvs.Op {
	t.Helper()
	ops, err := r.engine.Apply(t.Context(), cfg)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return ops
}

func (r *rig) expectKernel(t *testing.T, want string) {
	t.Helper()
	if got := r.k.String(); got != want {
		t.Errorf("kernel:\n%s\nwant:\n%s", got, want)
	}
}

const twoServices = `virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    real_servers:
      - {address: 10.0.0.11, weight: 100}
      - {address: 10.0.0.12, weight: 100}
  - name: api
    vip: 10.0.0.100
    port: 8080
    scheduler: rr
    forwarding: nat
    real_servers:
      - {address: 10.1.0.11, port: 9000}
`

func TestApplyFromEmptyThenNoop(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, twoServices)
	ops := r.apply(t, cfg)
	if len(ops) != 5 {
		t.Errorf("applied %d ops, want 5", len(ops))
	}
	r.expectKernel(t, "-A -t 10.0.0.100:80 -s wlc\n"+
		"-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 100\n"+
		"-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 100\n"+
		"-A -t 10.0.0.100:8080 -s rr\n"+
		"-a -t 10.0.0.100:8080 -r 10.1.0.11:9000 -m -w 1\n")
	if !strings.Contains(r.s.String(), "sysctl -w net.ipv4.ip_forward=1\n") {
		t.Errorf("NAT did not turn on forwarding:\n%s", r.s)
	}
	if strings.Contains(r.s.String(), "net.ipv6.conf.all.forwarding=1") {
		t.Errorf("IPv6 forwarding turned on without an IPv6 NAT server")
	}
	calls := r.k.calls
	if ops := r.apply(t, cfg); len(ops) != 0 {
		t.Errorf("second apply made %s", formatOps(ops))
	}
	if r.k.calls != calls {
		t.Errorf("a no-op apply still called the kernel")
	}
}

func TestRemovedServiceDeletedHandMadeKept(t *testing.T) {
	r := newRig(t)
	// An operator's own rule, made before lvs-node starts.
	r.k.run(ipvs.Op{Kind: ipvs.AddService, Service: svc("10.9.9.9", 22, "rr")},
		ipvs.Op{Kind: ipvs.AddDest, Service: svc("10.9.9.9", 22, "rr"), Dest: dest("10.9.9.10", 22, 1).Destination})
	hand := "-A -t 10.9.9.9:22 -s rr\n-a -t 10.9.9.9:22 -r 10.9.9.10:22 -g -w 1\n"
	r.apply(t, r.config(t, twoServices))
	if !strings.Contains(r.k.String(), hand) {
		t.Fatalf("hand-made rule lost on start:\n%s", r.k)
	}
	// Reload without api: api is deleted, the hand-made rule stays.
	one := twoServices[:strings.Index(twoServices, "  - name: api")]
	ops, err := r.engine.Reload(t.Context(), r.config(t, one))
	if err != nil {
		t.Fatal(err)
	}
	if got := formatOps(ops); got != "-d -t 10.0.0.100:8080 -r 10.1.0.11:9000\n-D -t 10.0.0.100:8080" {
		t.Errorf("reload ops:\n%s", got)
	}
	r.expectKernel(t, "-A -t 10.0.0.100:80 -s wlc\n"+
		"-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 100\n"+
		"-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 100\n"+hand)
	// Down removes what lvs-node owns, nothing else, and restores sysctls.
	if _, err := r.engine.Down(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.expectKernel(t, hand)
	if !strings.Contains(r.s.String(), "net.ipv4.ip_forward=0") {
		t.Errorf("sysctls not restored:\n%s", r.s)
	}
}

func TestAdoptionKeepsLiveEntries(t *testing.T) {
	r := newRig(t)
	// The table a previous manager (keepalived, a script) left: web with
	// one server of the config at another weight and one stray server.
	web := svc("10.0.0.100", 80, "wlc")
	r.k.run(ipvs.Op{Kind: ipvs.AddService, Service: web},
		ipvs.Op{Kind: ipvs.AddDest, Service: web, Dest: dest("10.0.0.11", 80, 5).Destination},
		ipvs.Op{Kind: ipvs.AddDest, Service: web, Dest: dest("10.0.0.50", 80, 5).Destination})
	ops := r.apply(t, r.config(t, twoServices))
	got := formatOps(ops)
	if strings.Contains(got, "-D -t 10.0.0.100:80") || strings.Contains(got, "-A -t 10.0.0.100:80 ") {
		t.Fatalf("adopted service was re-created:\n%s", got)
	}
	if !strings.Contains(got, "-e -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 100") {
		t.Errorf("existing server not edited in place:\n%s", got)
	}
	// Adopted: removing it from the config now deletes it.
	r.restart()
	r.apply(t, r.config(t, "virtual_services: []\n"))
	r.expectKernel(t, "")
}

func TestDriftRepairCounted(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, twoServices)
	r.apply(t, cfg)
	want := r.k.String()
	// ipvsadm -d, -e and -D by hand.
	web := svc("10.0.0.100", 80, "wlc")
	d := dest("10.0.0.12", 80, 3).Destination
	r.k.run(ipvs.Op{Kind: ipvs.DelDest, Service: web, Dest: dest("10.0.0.11", 80, 0).Destination},
		ipvs.Op{Kind: ipvs.EditDest, Service: web, Dest: d},
		ipvs.Op{Kind: ipvs.DelService, Service: svc("10.0.0.100", 8080, "rr")})
	n, err := r.engine.Resync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 { // re-add 10.0.0.11, fix weight of .12, re-add api and its server
		t.Errorf("resync repaired %d, want 4", n)
	}
	r.expectKernel(t, want)
	c := r.engine.Counters()
	if c.Repairs != 4 || c.Resyncs != 1 {
		t.Errorf("counters = %+v", c)
	}
	if n, _ := r.engine.Resync(t.Context()); n != 0 {
		t.Errorf("second resync repaired %d", n)
	}
	if c := r.engine.Counters(); c.Repairs != 4 || c.Resyncs != 2 {
		t.Errorf("counters after clean resync = %+v", c)
	}
}

const marked = `virtual_services:
  - name: shop
    vip: 10.0.0.102
    ports: [80, 443]
    persistence: {timeout: 60s}
    real_servers: [{address: 10.0.0.21}]
  - name: legacy
    fwmark: 1000
    real_servers: [{address: 10.0.0.31}]
  - name: blog
    vip: 10.0.0.103
    ports: [0]
    protocol: udp
`

func TestFWMarksStableAcrossRestartAndReload(t *testing.T) {
	r := newRig(t)
	body := "director: {state_dir: " + r.dir + ", auto_fwmark: {first: 999, last: 1010}}\n" + marked
	cfg, _, err := ParseConfig("d.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	// A mark service made by hand holds 999: it must not be taken over.
	r.k.run(ipvs.Op{Kind: ipvs.AddService, Service: ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: afInet, FWMark: 999}, Scheduler: "rr", Netmask: 0xffffffff}})
	if _, err := r.engine.Apply(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	wantMarks := "shop daddr 10.0.0.102 tcp dport {80,443} mark set 1001\nblog daddr 10.0.0.103 udp dport {0} mark set 1002\n"
	if got := r.m.String(); got != wantMarks {
		t.Fatalf("marks:\n%s\nwant:\n%s", got, wantMarks)
	}
	want := "-A -f 999 -s rr\n" +
		"-A -f 1000 -s wlc\n-a -f 1000 -r 10.0.0.31:0 -g -w 1\n" +
		"-A -f 1001 -s wlc -p 60\n-a -f 1001 -r 10.0.0.21:0 -g -w 1\n" +
		"-A -f 1002 -s wlc\n"
	r.expectKernel(t, want)

	// Restart, with blog moved before shop in the file: marks follow names.
	r.restart()
	swapped := strings.Replace(body, marked, "virtual_services:\n"+marked[strings.Index(marked, "  - name: blog"):]+marked[len("virtual_services:\n"):strings.Index(marked, "  - name: blog")], 1)
	cfg2, _, err := ParseConfig("d.yaml", []byte(swapped))
	if err != nil {
		t.Fatalf("%v\n%s", err, swapped)
	}
	ops, err := r.engine.Apply(t.Context(), cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 0 {
		t.Errorf("restart with reordered file changed the kernel:\n%s", formatOps(ops))
	}
	r.expectKernel(t, want)

	// Adding a ports to shop keeps its mark: the service is not re-created.
	cfg3, _, err := ParseConfig("d.yaml", []byte(strings.Replace(body, "ports: [80, 443]", "ports: [80, 443, 8443]", 1)))
	if err != nil {
		t.Fatal(err)
	}
	ops, err = r.engine.Reload(t.Context(), cfg3)
	if err != nil || len(ops) != 0 {
		t.Errorf("ports change: ops %s, err %v", formatOps(ops), err)
	}
	if !strings.Contains(r.m.String(), "shop daddr 10.0.0.102 tcp dport {80,443,8443} mark set 1001") {
		t.Errorf("marks not updated:\n%s", r.m)
	}

	// An explicit fwmark that takes shop's mark moves shop elsewhere.
	cfg4, _, err := ParseConfig("d.yaml", []byte(strings.Replace(body, "fwmark: 1000", "fwmark: 1001", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.engine.Reload(t.Context(), cfg4); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.m.String(), "shop daddr 10.0.0.102 tcp dport {80,443} mark set 1000\n") {
		t.Errorf("shop not moved off the explicit mark:\n%s", r.m)
	}
	if !strings.Contains(r.k.String(), "-A -f 999 -s rr\n") {
		t.Errorf("hand-made mark service lost:\n%s", r.k)
	}
}

func TestKernelFailureKeepsOwnershipRecorded(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, twoServices)
	r.k.failAt = 4 // web and its servers are created, then it fails
	if _, err := r.engine.Apply(t.Context(), cfg); err == nil {
		t.Fatal("no error from a failing kernel")
	}
	// A restarted daemon with an empty config must still clean up web:
	// it was recorded as owned before being created.
	r.restart()
	r.apply(t, r.config(t, "virtual_services: []\n"))
	r.expectKernel(t, "")
	if c := r.engine.Counters(); c.ApplyErrors != 0 || c.Applies != 1 {
		t.Errorf("counters of the new engine = %+v", c)
	}
}

func TestTableErrorChangesNothing(t *testing.T) {
	r := newRig(t)
	r.k.tableErr = errors.New("generic netlink family IPVS not found")
	_, err := r.engine.Apply(t.Context(), r.config(t, twoServices))
	if err == nil || !strings.Contains(err.Error(), "IPVS not found") {
		t.Fatalf("err = %v", err)
	}
	if r.k.calls != 0 || strings.Contains(r.s.String(), "ip_forward=1") {
		t.Errorf("changes made despite the error: calls %d\n%s", r.k.calls, r.s)
	}
}

func TestSysctlsAndVIPs(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, `  sysctls: {expire_nodest_conn: true, expire_quiescent_template: true, conn_reuse_mode: 0, ip_forward: false}
virtual_services:
  - {name: a, vip: 10.0.0.100, port: 80, bind_vip: true, forwarding: nat}
  - {name: b, vip: "2001:db8::1", port: 80, bind_vip: true}
`)
	r.apply(t, cfg)
	want := "sysctl -w net.ipv4.ip_forward=0\n" +
		"sysctl -w net.ipv4.vs.conn_reuse_mode=0\n" +
		"sysctl -w net.ipv4.vs.expire_nodest_conn=1\n" +
		"sysctl -w net.ipv4.vs.expire_quiescent_template=1\n" +
		"sysctl -w net.ipv6.conf.all.forwarding=0\n"
	if got := r.s.String(); got != want {
		t.Errorf("sysctls:\n%s\nwant:\n%s", got, want)
	}
	if got := r.a.String(); got != "ip addr add 10.0.0.100/32 dev lo\nip addr add 2001:db8::1/128 dev lo" {
		t.Errorf("addresses:\n%s", got)
	}
	// Dropping bind_vip on b removes its address only.
	r.apply(t, r.config(t, "virtual_services:\n  - {name: a, vip: 10.0.0.100, port: 80, bind_vip: true}\n"))
	if got := r.a.String(); got != "ip addr add 10.0.0.100/32 dev lo" {
		t.Errorf("addresses after reload:\n%s", got)
	}
	if _, err := r.engine.Down(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := r.a.String(); got != "" {
		t.Errorf("addresses after down:\n%s", got)
	}
	if !strings.Contains(r.s.String(), "expire_nodest_conn=0") || !strings.Contains(r.s.String(), "conn_reuse_mode=1") {
		t.Errorf("sysctls not restored:\n%s", r.s)
	}
}

func TestStateDirChangeRefused(t *testing.T) {
	r := newRig(t)
	r.apply(t, r.config(t, twoServices))
	cfg, _, err := ParseConfig("d.yaml", []byte("director: {state_dir: /elsewhere}\n"+twoServices))
	if err != nil {
		t.Fatal(err)
	}
	before := r.k.String()
	if _, err := r.engine.Reload(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "restart lvs-node") {
		t.Fatalf("err = %v", err)
	}
	r.expectKernel(t, before)
	if r.engine.Config().Director.StateDir != r.dir {
		t.Errorf("config replaced by a refused one")
	}
}

func TestPlanChangesNothing(t *testing.T) {
	r := newRig(t)
	ops, _, err := r.engine.Plan(context.Background(), r.config(t, twoServices))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 5 || r.k.String() != "" || r.k.calls != 0 {
		t.Errorf("plan: %d ops, kernel:\n%s", len(ops), r.k)
	}
	if got := FormatOp(ops[4]); got != "-a -t 10.0.0.100:8080 -r 10.1.0.11:9000 -m -w 1" {
		t.Errorf("op = %s", got)
	}
}

func TestManyServicesApply(t *testing.T) {
	r := newRig(t)
	var b strings.Builder
	b.WriteString("virtual_services:\n")
	for i := range 300 {
		fmt.Fprintf(&b, "  - {name: s%d, vip: %s, port: 80, real_servers: [{address: 10.1.0.1}, {address: 10.1.0.2}]}\n", i, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	if ops := r.apply(t, r.config(t, b.String())); len(ops) != 900 {
		t.Errorf("%d ops", len(ops))
	}
	if n := strings.Count(r.k.String(), "\n"); n != 900 {
		t.Errorf("%d kernel lines", n)
	}
}

func bigConfig(n int) string {
	var b strings.Builder
	b.WriteString("virtual_services:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: s%d\n    vip: %s\n    port: 80\n    real_servers:\n", i, netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		for j := range 10 {
			fmt.Fprintf(&b, "      - {address: 172.16.%d.%d, weight: 100}\n", i%250, j+1)
		}
	}
	return b.String()
}

// BenchmarkResyncNoop measures a resync of 10,000 services x 10 real
// servers that finds nothing to do (the fake kernel's dump included).
func BenchmarkResyncNoop(b *testing.B) {
	r := &rig{k: newFakeKernel(), dir: b.TempDir()}
	r.restart()
	cfg, _, err := ParseConfig("d.yaml", []byte("director:\n  state_dir: "+r.dir+"\n"+bigConfig(10000)))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.engine.Apply(b.Context(), cfg); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if n, err := r.engine.Resync(b.Context()); err != nil || n != 0 {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkLoadConfig measures decoding and validating a 10,000-service
// file.
func BenchmarkLoadConfig(b *testing.B) {
	data := []byte(bigConfig(10000))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseConfig("d.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
