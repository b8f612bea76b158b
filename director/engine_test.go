package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
)

type rig struct {
	k      *ipvstest.Kernel
	m      *fakeMarker
	s      *fakeSysctls
	a      *fakeHost
	dir    string
	engine *Engine
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{
		k: ipvstest.New(),
		m: &fakeMarker{},
		s: newFakeSysctls(map[string]string{
			"net/ipv4/ip_forward":                   "0",
			"net/ipv6/conf/all/forwarding":          "0",
			"net/ipv4/vs/expire_nodest_conn":        "0",
			"net/ipv4/vs/expire_quiescent_template": "0",
			"net/ipv4/vs/conn_reuse_mode":           "1",
			"net/ipv4/vs/sloppy_tcp":                "0",
		}),
		a:   &fakeHost{},
		dir: t.TempDir(),
	}
	r.restart()
	return r
}

// restart gives the rig a new Engine over the same kernel and state dir,
// as a restarted daemon would have.
func (r *rig) restart() {
	r.engine = NewEngine(r.dir, Deps{Kernel: r.k, Marker: r.m, Sysctls: r.s, Host: r.a})
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
	calls := r.k.Counts().Calls
	if ops := r.apply(t, cfg); len(ops) != 0 {
		t.Errorf("second apply made %s", formatOps(ops))
	}
	if r.k.Counts().Calls != calls {
		t.Errorf("a no-op apply still called the kernel")
	}
}

func TestRemovedServiceDeletedHandMadeKept(t *testing.T) {
	r := newRig(t)
	// An operator's own rule, made before lvs-node starts.
	r.k.Run(ipvs.Op{Kind: ipvs.AddService, Service: svc("10.9.9.9", 22, "rr")},
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
	r.k.Run(ipvs.Op{Kind: ipvs.AddService, Service: web},
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
	r.k.Run(ipvs.Op{Kind: ipvs.DelDest, Service: web, Dest: dest("10.0.0.11", 80, 0).Destination},
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

func TestKernelFailureKeepsOwnershipRecorded(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, twoServices)
	r.k.FailOp(4-1, ipvstest.ErrInjected) // web and its servers are created, then it fails
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
	r.k.FailTable(errors.New("generic netlink family IPVS not found"))
	_, err := r.engine.Apply(t.Context(), r.config(t, twoServices))
	if err == nil || !strings.Contains(err.Error(), "IPVS not found") {
		t.Fatalf("err = %v", err)
	}
	if r.k.Counts().Calls != 0 || strings.Contains(r.s.String(), "ip_forward=1") {
		t.Errorf("changes made despite the error: calls %d\n%s", r.k.Counts().Calls, r.s)
	}
}

func TestSysctlsAndVIPs(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, `  sysctls: {expire_nodest_conn: true, expire_quiescent_template: true, conn_reuse_mode: 0, ip_forward: false, sloppy_tcp: true}
virtual_services:
  - {name: a, vip: 10.0.0.100, port: 80, bind_vip: true, forwarding: nat}
  - {name: b, vip: "2001:db8::1", port: 80, bind_vip: true}
`)
	r.apply(t, cfg)
	want := "sysctl -w net.ipv4.ip_forward=0\n" +
		"sysctl -w net.ipv4.vs.conn_reuse_mode=0\n" +
		"sysctl -w net.ipv4.vs.expire_nodest_conn=1\n" +
		"sysctl -w net.ipv4.vs.expire_quiescent_template=1\n" +
		"sysctl -w net.ipv4.vs.sloppy_tcp=1\n" +
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
	if !strings.Contains(r.s.String(), "expire_nodest_conn=0") || !strings.Contains(r.s.String(), "conn_reuse_mode=1") || !strings.Contains(r.s.String(), "sloppy_tcp=0") {
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
	if len(ops) != 5 || r.k.String() != "" || r.k.Counts().Calls != 0 {
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
	r := &rig{k: ipvstest.New(), dir: b.TempDir()}
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

// webWeight is twoServices with web's second server at weight w.
func webWeight(w int) string {
	return strings.Replace(twoServices, "{address: 10.0.0.12, weight: 100}", fmt.Sprintf("{address: 10.0.0.12, weight: %d}", w), 1)
}

func TestWeightChangeIsOneOpAndNoRead(t *testing.T) {
	r := newRig(t)
	r.apply(t, r.config(t, twoServices))
	if r.k.Counts().Tables != 1 {
		t.Fatalf("first apply read the table %d times, want 1", r.k.Counts().Tables)
	}
	calls := r.k.Counts().Calls
	for i, w := range []int{7, 8} {
		var ops []ipvs.Op
		var err error
		if i == 0 {
			ops, err = r.engine.Reload(t.Context(), r.config(t, webWeight(w)))
		} else {
			ops, err = r.engine.Apply(t.Context(), r.config(t, webWeight(w)))
		}
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("-e -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w %d", w)
		if got := formatOps(ops); got != want {
			t.Errorf("ops:\n%s\nwant:\n%s", got, want)
		}
		if r.k.Counts().Tables != 1 || r.k.Counts().Calls != calls+i+1 {
			t.Errorf("weight %d: %d table reads and %d Apply calls, want 1 and %d", w, r.k.Counts().Tables, r.k.Counts().Calls, calls+i+1)
		}
		if !strings.Contains(r.k.String(), "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w "+fmt.Sprint(w)+"\n") {
			t.Errorf("kernel:\n%s", r.k)
		}
	}
	// The same file again: nothing to do, nothing asked of the kernel.
	if ops := r.apply(t, r.config(t, webWeight(8))); len(ops) != 0 || r.k.Counts().Tables != 1 || r.k.Counts().Calls != calls+2 {
		t.Errorf("no-op apply: %d ops, %d reads, %d calls", len(ops), r.k.Counts().Tables, r.k.Counts().Calls)
	}
	// Back to the first weight, then a resync, which always reads and
	// finds nothing to repair.
	if ops := r.apply(t, r.config(t, twoServices)); formatOps(ops) != "-e -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 100" {
		t.Errorf("back to 100: %s", formatOps(ops))
	}
	snap, _ := r.engine.Snapshot()
	if got := saveTable(snap); got != r.k.String() {
		t.Errorf("snapshot:\n%s\nkernel:\n%s", got, r.k)
	}
	if n, err := r.engine.Resync(t.Context()); err != nil || n != 0 || r.k.Counts().Tables != 2 {
		t.Errorf("resync: %d repairs, %v, %d reads", n, err, r.k.Counts().Tables)
	}
}

func TestStaleViewRetriedOnce(t *testing.T) {
	web := svc("10.0.0.100", 80, "wlc")
	api := svc("10.0.0.100", 8080, "rr")
	for _, tc := range []struct {
		name   string
		hand   []ipvs.Op // done by an operator behind lvs-node's back
		body   string    // the configuration reloaded then
		first  string    // the operation the kernel refuses, as errors name it
		errno  error
		redone string // the operations of the second attempt
	}{
		{
			name:   "service deleted by hand (ESRCH)",
			hand:   []ipvs.Op{{Kind: ipvs.DelDest, Service: api, Dest: dest("10.1.0.11", 9000, 1).Destination}, {Kind: ipvs.DelService, Service: api}},
			body:   strings.Replace(twoServices, "{address: 10.1.0.11, port: 9000}", "{address: 10.1.0.11, port: 9000, weight: 3}", 1),
			first:  "edit-server 10.1.0.11:9000 of TCP 10.0.0.100:8080",
			errno:  syscall.ESRCH,
			redone: "-A -t 10.0.0.100:8080 -s rr\n-a -t 10.0.0.100:8080 -r 10.1.0.11:9000 -m -w 3",
		},
		{
			name:   "server deleted by hand (ENOENT)",
			hand:   []ipvs.Op{{Kind: ipvs.DelDest, Service: web, Dest: dest("10.0.0.12", 80, 1).Destination}},
			body:   webWeight(5),
			first:  "edit-server 10.0.0.12:80 of TCP 10.0.0.100:80",
			errno:  syscall.ENOENT,
			redone: "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 5",
		},
		{
			name:   "server added by hand (EEXIST)",
			hand:   []ipvs.Op{{Kind: ipvs.AddDest, Service: web, Dest: dest("10.0.0.13", 80, 9).Destination}},
			body:   strings.Replace(twoServices, "      - {address: 10.0.0.12, weight: 100}\n", "      - {address: 10.0.0.12, weight: 100}\n      - {address: 10.0.0.13, weight: 100}\n", 1),
			first:  "add-server 10.0.0.13:80 to TCP 10.0.0.100:80",
			errno:  syscall.EEXIST,
			redone: "-e -t 10.0.0.100:80 -r 10.0.0.13:80 -g -w 100",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.apply(t, r.config(t, twoServices))
			r.k.Run(tc.hand...)
			var logs strings.Builder
			r.engine.log = slog.New(slog.NewTextHandler(&logs, nil))
			cfg := r.config(t, tc.body)
			ops, err := r.engine.Reload(t.Context(), cfg)
			if err != nil {
				t.Fatalf("reload: %v", err)
			}
			if got := formatOps(ops); got != tc.redone {
				t.Errorf("applied:\n%s\nwant:\n%s", got, tc.redone)
			}
			if !strings.Contains(logs.String(), "differed from the engine's view") || !strings.Contains(logs.String(), tc.errno.Error()) {
				t.Errorf("log lacks the retry and %q:\n%s", tc.errno, logs.String())
			}
			if !strings.Contains(logs.String(), "("+tc.first+"): ") {
				t.Errorf("log lacks the refused operation %s:\n%s", tc.first, logs.String())
			}
			if r.k.Counts().Tables != 2 {
				t.Errorf("%d table reads, want 2 (start and retry)", r.k.Counts().Tables)
			}
			// Converged: the kernel is what the file asks, and the view
			// agrees with it.
			if ops, _, err := r.engine.Plan(t.Context(), cfg); err != nil || len(ops) != 0 {
				t.Errorf("not converged: %s %v\n%s", formatOps(ops), err, r.k)
			}
			snap, _ := r.engine.Snapshot()
			if got, want := saveTable(snap), r.k.String(); got != want {
				t.Errorf("snapshot:\n%s\nkernel:\n%s", got, want)
			}
			if c := r.engine.Counters(); c.Reloads != 1 || c.ReloadErrors != 0 || c.LastOK != true {
				t.Errorf("counters = %+v", c)
			}
		})
	}
}

func TestOtherKernelErrorNotRetriedAndNextApplyReads(t *testing.T) {
	r := newRig(t)
	r.apply(t, r.config(t, twoServices))
	r.k.FailOp(0, ipvstest.ErrInjected)
	ops, err := r.engine.Reload(t.Context(), r.config(t, webWeight(5)))
	if err == nil || !errors.Is(err, syscall.EIO) || len(ops) != 0 {
		t.Fatalf("reload: %s, %v", formatOps(ops), err)
	}
	if r.k.Counts().Tables != 1 {
		t.Errorf("an error that says nothing of the table caused a read (%d)", r.k.Counts().Tables)
	}
	// After a failed batch the view is not trusted: the next apply reads.
	if ops := r.apply(t, r.config(t, webWeight(5))); formatOps(ops) != "-e -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 5" || r.k.Counts().Tables != 2 {
		t.Errorf("next apply: %s, %d reads", formatOps(ops), r.k.Counts().Tables)
	}
}

func TestSnapshotIsTheTableAfterTheChanges(t *testing.T) {
	r := newRig(t)
	if tb, _ := r.engine.Snapshot(); tb != nil {
		t.Fatalf("snapshot before the first apply: %v", tb)
	}
	r.apply(t, r.config(t, twoServices))
	web := svc("10.0.0.100", 80, "wlc")
	d11, d12 := dest("10.0.0.11", 80, 0).DestKey, dest("10.0.0.12", 80, 0).DestKey
	r.k.SetConns(web.ServiceKey, d11, 40)
	r.k.SetConns(web.ServiceKey, d12, 2)
	// A resync reads the counters.
	if _, err := r.engine.Resync(t.Context()); err != nil {
		t.Fatal(err)
	}
	before, _ := r.engine.Snapshot()
	beforeText := formatWithStats(before)
	// Reload: .12 re-weighted, .13 added, api removed.
	body := strings.Replace(webWeight(5), "      - {address: 10.0.0.12, weight: 5}\n", "      - {address: 10.0.0.12, weight: 5}\n      - {address: 10.0.0.13}\n", 1)
	body = body[:strings.Index(body, "  - name: api")]
	if _, err := r.engine.Reload(t.Context(), r.config(t, body)); err != nil {
		t.Fatal(err)
	}
	snap, names := r.engine.Snapshot()
	want := "-A -t 10.0.0.100:80 -s wlc conns=42 hashed=true\n" +
		"-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 100 conns=40 active=40\n" +
		"-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 5 conns=2 active=2\n" +
		"-a -t 10.0.0.100:80 -r 10.0.0.13:80 -g -w 1 conns=0 active=0\n"
	if got := formatWithStats(snap); got != want {
		t.Errorf("snapshot after reload:\n%s\nwant:\n%s", got, want)
	}
	if len(names) != 1 || names[web.ServiceKey] != "web" {
		t.Errorf("names = %v", names)
	}
	if got := formatWithStats(before); got != beforeText {
		t.Errorf("a snapshot handed out earlier changed:\n%s\nwas:\n%s", got, beforeText)
	}
	// The kernel agrees (apart from counters, which the fake keeps too).
	kt, _ := r.k.Table(t.Context())
	if a, b := formatWithStats(snap), formatWithStats(kt); a != b {
		t.Errorf("snapshot:\n%s\nkernel:\n%s", a, b)
	}
	// Down empties what lvs-node owned.
	if _, err := r.engine.Down(t.Context()); err != nil {
		t.Fatal(err)
	}
	if snap, names := r.engine.Snapshot(); len(snap.Services) != 0 || names != nil {
		t.Errorf("snapshot after down:\n%s names %v", formatWithStats(snap), names)
	}
}

// bigConfigs parses the 10,000 x 10 configuration twice, the second with
// one weight changed.
func bigConfigs(b testing.TB, dir string) (*Config, *Config) {
	b.Helper()
	body := "director:\n  state_dir: " + dir + "\n" + bigConfig(10000)
	cfg1, _, err := ParseConfig("d.yaml", []byte(body))
	if err != nil {
		b.Fatal(err)
	}
	cfg2, _, err := ParseConfig("d.yaml", []byte(strings.Replace(body, "{address: 172.16.249.10, weight: 100}", "{address: 172.16.249.10, weight: 99}", 1)))
	if err != nil {
		b.Fatal(err)
	}
	return cfg1, cfg2
}

// BenchmarkWeightChange measures one weight change end to end in a table
// of 10,000 services x 10 real servers: Engine.Apply of an already parsed
// configuration (Desired, Diff against the engine's view, one EditDest
// through the fake kernel, the view updated).
func BenchmarkWeightChange(b *testing.B) {
	r := &rig{k: ipvstest.New(), dir: b.TempDir()}
	r.restart()
	cfg1, cfg2 := bigConfigs(b, r.dir)
	if _, err := r.engine.Apply(b.Context(), cfg1); err != nil {
		b.Fatal(err)
	}
	reads := r.k.Counts().Tables
	cfgs := [2]*Config{cfg2, cfg1}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ops, err := r.engine.Apply(b.Context(), cfgs[i%2])
		if err != nil || len(ops) != 1 || ops[0].Kind != ipvs.EditDest {
			b.Fatal(formatOps(ops), err)
		}
		i++
	}
	if r.k.Counts().Tables != reads {
		b.Fatalf("the weight changes read the table %d times", r.k.Counts().Tables-reads)
	}
}

// BenchmarkDesired measures building the desired table of 10,000 x 10.
func BenchmarkDesired(b *testing.B) {
	cfg, _ := bigConfigs(b, b.TempDir())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Desired(cfg, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestQuickPlanMatchesFullPlan reloads changes on an engine that plans
// them service by service and, for comparison, on a restarted engine
// that reads the kernel and builds the whole desired table: the kernel,
// marks, sysctls, addresses, records and names must come out the same.
func TestQuickPlanMatchesFullPlan(t *testing.T) {
	// No NAT at first, so that turning it on shows in the sysctls.
	dr := strings.Replace(twoServices, "    forwarding: nat\n    real_servers:\n      - {address: 10.1.0.11, port: 9000}", "    real_servers:\n      - {address: 10.1.0.11}", 1)
	base := dr + marked[len("virtual_services:\n"):] + `  - name: v6
    vip: "2001:db8::1"
    port: 443
    bind_vip: true
    real_servers: [{address: "2001:db8::11"}]
`
	for _, tc := range []struct {
		name  string
		old   string // replaced in base
		new   string
		quick bool // planned service by service
	}{
		{"weight", "{address: 10.0.0.12, weight: 100}", "{address: 10.0.0.12, weight: 0}", true},
		{"server added", "{address: 10.0.0.12, weight: 100}", "{address: 10.0.0.12, weight: 100}\n      - {address: 10.0.0.13}", true},
		{"server removed", "      - {address: 10.0.0.12, weight: 100}\n", "", true},
		{"servers reordered", "      - {address: 10.0.0.11, weight: 100}\n      - {address: 10.0.0.12, weight: 100}\n", "      - {address: 10.0.0.12, weight: 100}\n      - {address: 10.0.0.11, weight: 100}\n", true},
		{"scheduler and persistence", "    port: 80\n", "    port: 80\n    scheduler: sh\n    scheduler_flags: [sh-port]\n    persistence: {timeout: 30s}\n", true},
		{"dr to nat turns forwarding on", "    port: 80\n", "    port: 80\n    forwarding: nat\n", true},
		{"ipv6 dr to nat turns ipv6 forwarding on", "    port: 443\n", "    port: 443\n    forwarding: nat\n", true},
		{"server of a mark service", "real_servers: [{address: 10.0.0.21}]", "real_servers: [{address: 10.0.0.21, weight: 4}, {address: 10.0.0.22}]", true},
		{"ipv6 weight", `[{address: "2001:db8::11"}]`, `[{address: "2001:db8::11", weight: 3}]`, true},
		{"nothing", "", "", true},
		{"port changed", "    port: 8080\n", "    port: 8081\n", false},
		{"renamed", "name: api", "name: api2", false},
		{"ports changed", "ports: [80, 443]", "ports: [80, 443, 8443]", false},
		{"bind_vip dropped", "    bind_vip: true\n", "", false},
		{"service added", "  - name: legacy\n", "  - name: extra\n    vip: 10.0.0.104\n    port: 25\n  - name: legacy\n", false},
		{"service removed", "  - name: legacy\n    fwmark: 1000\n    real_servers: [{address: 10.0.0.31}]\n", "", false},
		{"services reordered", dr[len("virtual_services:\n"):], dr[strings.Index(dr, "  - name: api"):] + dr[len("virtual_services:\n"):strings.Index(dr, "  - name: api")], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("%q not in the base configuration", tc.old)
			}
			changed := strings.Replace(base, tc.old, tc.new, 1)
			var got [2]string
			for i, restart := range []bool{false, true} {
				r := newRig(t)
				r.apply(t, r.config(t, base))
				cfg := r.config(t, changed)
				if restart {
					r.restart()
				} else if q := r.engine.quickPlan(cfg) != nil; q != tc.quick {
					t.Errorf("planned service by service: %t, want %t", q, tc.quick)
				}
				ops, err := r.engine.Reload(t.Context(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				rec, err := os.ReadFile(recordsPath(r.dir))
				if err != nil {
					t.Fatal(err)
				}
				snap, names := r.engine.Snapshot()
				got[i] = fmt.Sprintf("ops:\n%s\nkernel:\n%s\nsnapshot:\n%s\nmarks:\n%s\nsysctls:\n%s\naddrs:\n%s\nrecords:\n%s\nnames: %v\n",
					formatOps(ops), r.k, saveTable(snap), r.m, r.s, r.a, strings.ReplaceAll(string(rec), r.dir, "DIR"), names)
				if !strings.Contains(got[i], "kernel:\n"+saveTable(snap)+"\n") {
					t.Errorf("snapshot differs from the kernel:\n%s", got[i])
				}
			}
			if got[0] != got[1] {
				t.Errorf("service by service:\n%s\nfull plan:\n%s", got[0], got[1])
			}
		})
	}
}

// TestSameVirtualServiceFields changes each field of a virtual service
// and of its real servers in turn: sameVirtualService must notice every
// one, so that a field added to the configuration cannot be ignored by a
// reload.
func TestSameVirtualServiceFields(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, `virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    persistence: {timeout: 60s}
    real_servers: [{address: 10.0.0.11, weight: 100}]
`)
	orig := cfg.VirtualServices[0]
	if c := orig; !sameVirtualService(&orig, &c) {
		t.Fatal("a copy differs")
	}
	var mutate func(v reflect.Value) bool
	mutate = func(v reflect.Value) bool {
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			v.SetUint(v.Uint() + 1)
		case reflect.Pointer:
			n := reflect.New(v.Type().Elem())
			if !v.IsNil() {
				n.Elem().Set(v.Elem())
				if !mutate(n.Elem()) {
					return false
				}
			}
			v.Set(n)
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
		case reflect.Struct:
			if v.NumField() == 0 || !v.Field(0).CanSet() {
				return false
			}
			return mutate(v.Field(0))
		default:
			return false
		}
		return true
	}
	fresh := func() VirtualService {
		c := orig
		c.RealServers = slices.Clone(orig.RealServers)
		if orig.Persistence != nil {
			p := *orig.Persistence
			c.Persistence = &p
		}
		return c
	}
	// Fields of real servers compared as parsed: changing the parsed
	// value must be noticed.
	parsedAs := map[string]func(rs *RealServer){
		"RealServer.Address":    func(rs *RealServer) { rs.addr = netip.MustParseAddr("10.0.0.12") },
		"RealServer.Forwarding": func(rs *RealServer) { rs.forward = ipvs.Masq },
		"RealServer.TunnelType": func(rs *RealServer) { rs.tunType = ipvs.TunGRE },
	}
	for name, change := range parsedAs {
		if _, ok := reflect.TypeFor[RealServer]().FieldByName(strings.TrimPrefix(name, "RealServer.")); !ok {
			t.Errorf("%s is gone: update parsedAs", name)
		}
		c := fresh()
		change(&c.RealServers[0])
		if sameVirtualService(&orig, &c) {
			t.Errorf("%s changed (as parsed) but sameVirtualService did not notice", name)
		}
	}
	// check visits every exported field of the struct field returns, with
	// a fresh copy of the service for each.
	check := func(what string, field func(vs *VirtualService) reflect.Value) {
		typ := field(&orig).Type()
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() || parsedAs[what+"."+f.Name] != nil {
				continue
			}
			c := fresh()
			if !mutate(field(&c).Field(i)) {
				t.Errorf("%s.%s: the test cannot change a %s", what, f.Name, f.Type)
				continue
			}
			if sameVirtualService(&orig, &c) {
				t.Errorf("%s.%s changed but sameVirtualService did not notice", what, f.Name)
			}
		}
	}
	check("VirtualService", func(vs *VirtualService) reflect.Value { return reflect.ValueOf(vs).Elem() })
	check("RealServer", func(vs *VirtualService) reflect.Value { return reflect.ValueOf(&vs.RealServers[0]).Elem() })
	check("Persistence", func(vs *VirtualService) reflect.Value { return reflect.ValueOf(vs.Persistence).Elem() })
}

// BenchmarkSetFeedback measures one input change end to end in a table
// of 10,000 services x 10 real servers: the effective weight of one real
// server changes, one EditDest goes to the fake kernel.
func BenchmarkSetFeedback(b *testing.B) {
	r := &rig{k: ipvstest.New(), dir: b.TempDir()}
	r.restart()
	cfg1, _ := bigConfigs(b, r.dir)
	if _, err := r.engine.Apply(b.Context(), cfg1); err != nil {
		b.Fatal(err)
	}
	vs := &cfg1.VirtualServices[len(cfg1.VirtualServices)-1]
	ref := vs.ref(0)
	caps := [2]float64{0.5, 1}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ops, err := r.engine.SetFeedback(b.Context(), map[ServerRef]*Feedback{ref: {Capacity: caps[i%2]}})
		if err != nil || len(ops) != 1 || ops[0].Kind != ipvs.EditDest {
			b.Fatal(formatOps(ops), err)
		}
		i++
	}
}
