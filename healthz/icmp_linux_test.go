package healthz

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
)

// icmpNetns moves the test into a fresh network namespace with the
// loopback up and ping sockets allowed for every group when ping is set,
// for none otherwise. Checks must run on the test goroutine, whose thread
// is in the namespace.
func icmpNetns(t *testing.T, ping bool) {
	t.Helper()
	kerneltest.FreshNetns(t)
	kerneltest.LoopbackUp(t)
	groups := "1 0" // the kernel's default: nobody
	if ping {
		groups = "0 2147483647"
	}
	// net.ipv4.ping_group_range belongs to the namespace of the writing
	// thread; it covers ICMPv6 ping sockets too.
	if err := os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte(groups), 0); err != nil {
		t.Fatal(err)
	}
}

func icmpCheck(t *testing.T, addr string, mode icmpMode, timeout time.Duration) (*icmpChecker, Result) {
	t.Helper()
	s := spec(Spec{Type: TypeICMP}, timeout)
	c := newICMP(&s, netip.MustParseAddr(addr), mode)
	return c, runChecker(t, c, timeout)
}

func TestICMPPingSocket(t *testing.T) {
	icmpNetns(t, true)
	for _, a := range []string{"127.0.0.1", "::1"} {
		_, r := icmpCheck(t, a, icmpPing, 500*time.Millisecond)
		wantResult(t, r, true, "", "echo reply")
		c, r := icmpCheck(t, a, icmpAuto, 500*time.Millisecond)
		wantResult(t, r, true, "", "echo reply")
		if c.raw.Load() {
			t.Errorf("%s: auto mode used a raw socket where ping sockets are allowed", a)
		}
	}
}

func TestICMPRawSocket(t *testing.T) {
	icmpNetns(t, false)
	if _, r := icmpCheck(t, "127.0.0.1", icmpPing, 500*time.Millisecond); r.OK {
		t.Fatalf("a ping socket worked although ping_group_range allows nobody: %+v", r)
	}
	for _, a := range []string{"127.0.0.1", "::1"} {
		_, r := icmpCheck(t, a, icmpRaw, 500*time.Millisecond)
		wantResult(t, r, true, "", "echo reply")
		c, r := icmpCheck(t, a, icmpAuto, 500*time.Millisecond)
		wantResult(t, r, true, "", "echo reply")
		if !c.raw.Load() {
			t.Errorf("%s: auto mode did not fall back to a raw socket", a)
		}
	}
}

func TestICMPNoReply(t *testing.T) {
	icmpNetns(t, true)
	silentNet(t)
	for _, mode := range []icmpMode{icmpPing, icmpRaw} {
		_, r := icmpCheck(t, "192.0.2.2", mode, 300*time.Millisecond)
		wantResult(t, r, false, KindTimeout, "no echo reply within 300ms")
	}
}

// silentNet gives the test's namespace 192.0.2.1/24 on a veth pair whose
// far end has no address: packets to 192.0.2.2 wait for an ARP answer
// that never comes, and nothing leaves the namespace.
func silentNet(t *testing.T) {
	t.Helper()
	d := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "hc0"}, PeerName: "hc1"}
	if err := netlink.LinkAdd(d); err != nil {
		t.Fatal(err)
	}
	peer, err := netlink.LinkByName("hc1")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("192.0.2.1/24")
	if err := netlink.AddrAdd(d, addr); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(d); err != nil {
		t.Fatal(err)
	}
}

// TestTCPConnectTimeout covers a handshake that is not over within
// connect(2): the wait goes through the poller and ends at the timeout.
func TestTCPConnectTimeout(t *testing.T) {
	icmpNetns(t, false)
	silentNet(t)
	for _, s := range []Spec{{Type: TypeTCP}, {Type: TypeTCP, Send: "x", Expect: "y"}, {Type: TypeHTTP}} {
		wantResult(t, runCheck(t, spec(s, 300*time.Millisecond), netip.MustParseAddrPort("192.0.2.2:80")), false, KindTimeout, "timeout after 300ms")
	}
}

// TestEventLoopConnectTimeout runs a plain tcp check whose handshake never
// completes through the manager's event loop, on the test's goroutine (its
// thread is in the namespace, and the loop's sockets are made there).
func TestEventLoopConnectTimeout(t *testing.T) {
	icmpNetns(t, false)
	silentNet(t)
	m := NewManager(Options{rand: func(int64) int64 { return 0 }})
	s := spec(Spec{Type: TypeTCP}, 300*time.Millisecond)
	o := owner("svc", netip.MustParseAddrPort("192.0.2.2:80"))
	if err := m.Update([]Want{{Owner: o, Spec: s}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := statusOf(m, o)
	if st.Checks != 1 {
		t.Fatalf("%d checks ran", st.Checks)
	}
	wantResult(t, st.Last, false, KindTimeout, "timeout after 300ms")
	if l := st.Last.Latency; l < 300*time.Millisecond || l > 300*time.Millisecond+minTick+slack {
		t.Errorf("latency %s with a timeout of 300ms", l)
	}
}
