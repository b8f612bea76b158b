package toatest

import (
	"errors"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
	"github.com/lvs-node/lvs-node/toa"
	"github.com/lvs-node/lvs-node/toa/format"
)

// Addresses of the suite's lab: balancers (trusted and not), servers,
// and the "real clients" carried in the options.
var (
	bal4      = netip.MustParseAddr("192.0.2.1")
	untrust4  = netip.MustParseAddr("192.0.2.200")
	bal6      = netip.MustParseAddr("2001:db8:b::1")
	untrust6  = netip.MustParseAddr("2001:db8:bad::1")
	srv4      = netip.MustParseAddr("198.51.100.10")
	srv6      = netip.MustParseAddr("2001:db8:5::10")
	client4   = netip.MustParseAddrPort("203.0.113.7:40001")
	client6   = netip.MustParseAddrPort("[2001:db8:c1::7]:40002")
	trusted   = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/25"), netip.MustParsePrefix("2001:db8:b::/64")}
	allKinds  = []uint8{254, 253, 200, 28}
	fastOpen4 = netip.MustParseAddrPort("203.0.113.9:63881") // port bytes F9 89
)

// Env says where the suite pins.
type Env struct {
	// PinDir is the pin directory (on a BPF file system).
	PinDir string
}

// Setup makes a lab and attaches eBPF TOA to its cgroup; both are
// removed when the test ends, and the test fails if anything stays.
func Setup(t *testing.T, env Env) *toa.Lab {
	t.Helper()
	kerneltest.NeedRoot(t)
	lab, err := toa.NewLab(toa.LabOptions{Addrs: []netip.Addr{bal4, untrust4, bal6, untrust6, srv4, srv6}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := toa.Detach(toa.Options{PinDir: env.PinDir}); err != nil {
			t.Errorf("detach: %v", err)
		}
		if _, err := os.Stat(env.PinDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pin directory %s left behind: %v", env.PinDir, err)
		}
		cg := lab.Cgroup
		if err := lab.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
		if _, err := os.Stat(cg); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lab cgroup %s left behind", cg)
		}
	})
	return lab
}

// Attach attaches eBPF TOA to the lab with the given kinds.
func Attach(t testing.TB, lab *toa.Lab, env Env, kinds []uint8) {
	t.Helper()
	if _, err := toa.Attach(toa.Config{Cgroup: lab.Cgroup, Trusted: trusted, Kinds: kinds}, toa.Options{PinDir: env.PinDir}); err != nil {
		t.Fatalf("attach: %v", err)
	}
}

func mustEncode(id format.ID, ap netip.AddrPort) []byte {
	b, err := format.Encode(id, ap)
	if err != nil {
		panic(err)
	}
	return b
}

func mapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
}

// Case is one connection of the suite.
type Case struct {
	Name     string
	Kinds    []uint8 // nil: all kinds
	Listen   toa.Listen
	Balancer netip.Addr
	Opt      []byte
	Opt2     []byte // a second option in the same packets
	Where    toa.Where
	Data     bool
	// Want is the address accept() and getpeername() must return; zero:
	// the balancer's own (no rewrite). WantPort0 keeps the balancer's
	// port (formats without a port).
	Want      netip.AddrPort
	WantAddr  netip.Addr
	WantGo    string // Go's view, when it differs from Want
	WantLate  netip.AddrPort
	WantNAT64 netip.AddrPort
	// Deltas of counters.
	Counters map[string]uint64
}

// Cases returns the suite: every format, both families, a dual-stack
// server, no TOA, untrusted sources, malformed options, Fast Open magic,
// an option in a later packet and the NAT64 lookup.
func Cases() []Case {
	syn28v4, _ := format.Encode(format.K28, netip.AddrPortFrom(netip.MustParseAddr("198.51.100.77"), 0))
	syn28v6, _ := format.Encode(format.K28b, netip.AddrPortFrom(netip.MustParseAddr("2001:db8:cd::28"), 0))
	v4 := mustEncode(format.K254, client4)
	v6 := mustEncode(format.K254b, client6)
	toa1 := map[string]uint64{"syn_recv_sock_toa": 1, "untrusted": 0, "malformed": 0}
	none := map[string]uint64{"syn_recv_sock_toa": 0, "syn_recv_sock_no_toa": 1, "untrusted": 0, "malformed": 0}
	return []Case{
		{Name: "ipv4 254/8", Listen: toa.ListenIPv4, Balancer: bal4, Opt: v4, Where: toa.InACK, Want: client4, Counters: toa1},
		{Name: "ipv6 254/20", Listen: toa.ListenIPv6, Balancer: bal6, Opt: v6, Where: toa.InACK, Want: client6, Counters: toa1},
		{Name: "dual-stack 254/8", Listen: toa.ListenDual, Balancer: bal4, Opt: v4, Where: toa.InACK, Want: mapped(client4), WantGo: client4.String(), Counters: toa1},
		{Name: "dual-stack 254/20", Listen: toa.ListenDual, Balancer: bal4, Opt: v6, Where: toa.InACK, Want: client6, Counters: toa1},
		{Name: "ipv6 253/20", Listen: toa.ListenIPv6, Balancer: bal6, Opt: mustEncode(format.K253, client6), Where: toa.InACK, Want: client6, Counters: toa1},
		{Name: "ipv4 200/8", Listen: toa.ListenIPv4, Balancer: bal4, Opt: mustEncode(format.K200, client4), Where: toa.InACK, Want: client4, Counters: toa1},
		{Name: "ipv4 28/7 in the SYN", Listen: toa.ListenIPv4, Balancer: bal4, Opt: syn28v4, Where: toa.InSYN, WantAddr: netip.MustParseAddr("198.51.100.77"), Counters: toa1},
		{Name: "ipv6 28/19 in the SYN", Listen: toa.ListenIPv6, Balancer: bal6, Opt: syn28v6, Where: toa.InSYN, WantAddr: netip.MustParseAddr("2001:db8:cd::28"), Counters: toa1},
		{Name: "254/8 in the SYN only (saved SYN)", Kinds: []uint8{254, 28}, Listen: toa.ListenIPv4, Balancer: bal4, Opt: v4, Where: toa.InSYN, Want: client4, Counters: toa1},
		{Name: "254/8 in the SYN, SYN not saved", Kinds: []uint8{254}, Listen: toa.ListenIPv4, Balancer: bal4, Opt: v4, Where: toa.InSYN, Counters: none},
		{Name: "no TOA", Listen: toa.ListenIPv4, Balancer: bal4, Counters: none},
		{Name: "no TOA ipv6", Listen: toa.ListenIPv6, Balancer: bal6, Counters: none},
		{Name: "untrusted ipv4 source", Listen: toa.ListenIPv4, Balancer: untrust4, Opt: v4, Where: toa.InACK,
			Counters: map[string]uint64{"untrusted": 1, "syn_recv_sock_toa": 0, "syn_recv_sock_no_toa": 0}},
		{Name: "untrusted ipv6 source", Listen: toa.ListenDual, Balancer: untrust6, Opt: v6, Where: toa.InACK,
			Counters: map[string]uint64{"untrusted": 1, "syn_recv_sock_toa": 0}},
		{Name: "kind not enabled", Kinds: []uint8{254, 253}, Listen: toa.ListenIPv4, Balancer: bal4, Opt: mustEncode(format.K200, client4), Where: toa.InACK, Counters: none},
		{Name: "malformed: kind 28 version 2", Listen: toa.ListenIPv4, Balancer: bal4, Opt: []byte{28, 7, 2, 198, 51, 100, 77}, Where: toa.InSYN,
			Counters: map[string]uint64{"malformed": 1, "syn_recv_sock_no_toa": 1, "syn_recv_sock_toa": 0}},
		{Name: "malformed: loopback address", Listen: toa.ListenIPv4, Balancer: bal4, Opt: mustEncode(format.K254, netip.MustParseAddrPort("127.0.0.1:80")), Where: toa.InACK,
			Counters: map[string]uint64{"malformed": 1, "syn_recv_sock_no_toa": 1}},
		{Name: "malformed: zero address", Listen: toa.ListenDual, Balancer: bal4, Opt: []byte{254, 8, 0, 80, 0, 0, 0, 0}, Where: toa.InACK,
			Counters: map[string]uint64{"malformed": 1, "syn_recv_sock_no_toa": 1}},
		{Name: "repeated: the first counts", Listen: toa.ListenIPv4, Balancer: bal4,
			Opt: mustEncode(format.K254, client4), Opt2: mustEncode(format.K200, netip.MustParseAddrPort("198.51.100.99:9")), Where: toa.InACK,
			Want: client4, Counters: map[string]uint64{"malformed": 1, "syn_recv_sock_toa": 1}},
		{Name: "fast open magic in the ACK is TOA", Listen: toa.ListenIPv4, Balancer: bal4, Opt: mustEncode(format.K254, fastOpen4), Where: toa.InACK, Want: fastOpen4, Counters: toa1},
		{Name: "fast open magic in the SYN is not", Listen: toa.ListenIPv4, Balancer: bal4, Opt: mustEncode(format.K254, fastOpen4), Where: toa.InSYN, Counters: none},
		{Name: "TOA in the first data packet only", Listen: toa.ListenIPv4, Balancer: bal4, Opt: v4, Where: toa.InData, Data: true, WantLate: client4,
			Counters: map[string]uint64{"syn_recv_sock_no_toa": 1, "late_toa": 1}},
		{Name: "NAT64: IPv6 client on an IPv4 socket", Listen: toa.ListenIPv4, Balancer: bal4, Opt: v6, Where: toa.InACK, WantNAT64: client6,
			Counters: map[string]uint64{"syn_recv_sock_toa": 1, "nat64_lookup": 1}},
	}
}

// Run runs every case in a lab of its own pins.
func Run(t *testing.T, env Env) {
	lab := Setup(t, env)
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) { RunCase(t, lab, env, c) })
	}
}

// RunCase runs one case.
func RunCase(t *testing.T, lab *toa.Lab, env Env, c Case) {
	kinds := c.Kinds
	if kinds == nil {
		kinds = allKinds
	}
	Attach(t, lab, env, kinds)
	var opts [][]byte
	for _, o := range [][]byte{c.Opt, c.Opt2} {
		if len(o) > 0 {
			opts = append(opts, o)
		}
	}
	if err := lab.Inject(c.Where, opts...); err != nil {
		t.Fatal(err)
	}
	w0, f0, _, _ := lab.InjectorStats()
	before := counters(t, env)
	seen, err := lab.Connect(toa.Conn{Listen: c.Listen, Server: server(c), Balancer: c.Balancer, Data: c.Data})
	if err != nil {
		t.Fatal(err)
	}
	after := counters(t, env)
	w1, f1, last, _ := lab.InjectorStats()
	if len(c.Opt) > 0 && (w1 == w0 || f1 != f0) {
		t.Fatalf("the injector did not write the option: %d written, %d refused (last error %d)", w1-w0, f1-f0, last)
	}
	// What the kernel alone would say: the balancer's address.
	own := seen.Balancer
	if c.Listen == toa.ListenDual && own.Addr().Is4() {
		own = mapped(own)
	}
	want := own
	switch {
	case c.Want.IsValid():
		want = c.Want
	case c.WantAddr.IsValid():
		want = netip.AddrPortFrom(c.WantAddr, own.Port())
	}
	if c.Listen == toa.ListenDual && want.Addr().Is4() {
		want = mapped(want)
	}
	t.Logf("balancer %s; accept() %s, getpeername() %s, Go %s", seen.Balancer, seen.Accept, seen.Peer, seen.GoRemote)
	if seen.Accept != want || seen.Peer != want {
		t.Errorf("accept() returned %s and getpeername() %s, want %s", seen.Accept, seen.Peer, want)
	}
	wantFam := unix.AF_INET
	if c.Listen != toa.ListenIPv4 {
		wantFam = unix.AF_INET6
	}
	if seen.AcceptFamily != wantFam {
		t.Errorf("accept() returned address family %d, want %d", seen.AcceptFamily, wantFam)
	}
	if c.WantGo != "" && seen.GoRemote.String() != c.WantGo {
		t.Errorf("Go's net package says %s, want %s", seen.GoRemote, c.WantGo)
	}
	if c.Data {
		late := c.WantLate
		if !late.IsValid() {
			late = want
		}
		if seen.PeerAfterData != late {
			t.Errorf("getpeername() after the data returned %s, want %s", seen.PeerAfterData, late)
		}
	}
	if c.WantNAT64.IsValid() {
		if seen.NAT64Err != nil || seen.NAT64 != c.WantNAT64 {
			t.Errorf("NAT64 lookup: %s, %v; want %s", seen.NAT64, seen.NAT64Err, c.WantNAT64)
		}
	} else if seen.NAT64Err == nil {
		t.Errorf("NAT64 lookup answered %s on a connection without an IPv6 TOA", seen.NAT64)
	}
	for name, d := range c.Counters {
		if got := after[name] - before[name]; got != d {
			t.Errorf("counter %s went up by %d, want %d", name, got, d)
		}
	}
	rewritten := want != own
	if ok := after["getname_toa_ok"] - before["getname_toa_ok"]; rewritten && ok < 2 {
		t.Errorf("getname_toa_ok went up by %d, want at least 2 (accept and getpeername)", ok)
	}
	if c.WantNAT64.IsValid() && after["getname_toa_mismatch"] == before["getname_toa_mismatch"] {
		t.Error("getname_toa_mismatch did not count the IPv6 address on an IPv4 socket")
	}
}

func server(c Case) netip.Addr {
	if c.Balancer.Is6() {
		return srv6
	}
	return srv4
}

func counters(t testing.TB, env Env) map[string]uint64 {
	t.Helper()
	tab, err := toa.ReadCounters(toa.Options{PinDir: env.PinDir})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]uint64{}
	for _, c := range tab.Counters {
		m[c.Name] = c.Total()
	}
	return m
}
