package fullnat

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/director/fullnat/fullnattest"
	"github.com/lvs-node/lvs-node/internal/kerneltest"
	"github.com/lvs-node/lvs-node/lab/topo"
	"github.com/lvs-node/lvs-node/toa/format"
	"github.com/lvs-node/lvs-node/toa/toatest"
)

// hostLab is a client, a director and a real server in namespaces of the
// host. The host kernel has no IPVS: the director's nftables DNAT plays
// its part (the client's packets to the VIP go to the real server with
// the connection's original destination kept in conntrack, as IPVS does
// with conntrack on), so that the source NAT and the TOA writer run on
// the real path.
type hostLab struct {
	client, dir, rs *topo.Host
	pinDir          string
	rec             Record
	saves           int
}

const (
	labVIP  = "198.51.100.100"
	labRS   = "10.1.0.11"
	labLA   = "10.1.0.2"
	labLA2  = "10.1.0.3"
	labVIP6 = "2001:db8:c::100"
	labRS6  = "2001:db8:1::11"
	labLA6  = "2001:db8:1::2"
	labLA62 = "2001:db8:1::3"
)

func newHostLab(t *testing.T) *hostLab {
	kerneltest.NeedRoot(t)
	l := topo.New(t)
	front := l.Net("front", "198.51.100.0/24")
	back := l.Net("back", "10.1.0.0/24")
	hl := &hostLab{
		client: l.Host("client", topo.On(front, "198.51.100.10", "2001:db8:c::10/64")),
		dir: l.Host("dir", topo.On(front, "198.51.100.1", labVIP, "2001:db8:c::1/64", labVIP6+"/64"),
			topo.On(back, "10.1.0.1", labLA, labLA2, "2001:db8:1::1/64", labLA6+"/64", labLA62+"/64")),
		rs: l.Host("rs", topo.On(back, labRS, labRS6+"/64")),
	}
	hl.dir.Sysctl(t, "net/ipv4/ip_forward", "1")
	hl.dir.Sysctl(t, "net/ipv6/conf/all/forwarding", "1")
	// IPVS's part: send the VIP's connections to the real server.
	hl.dir.MustRun(t, "nft", "add table ip lvs_test_dnat; add chain ip lvs_test_dnat pre { type nat hook prerouting priority dstnat; }; "+
		"add rule ip lvs_test_dnat pre ip daddr "+labVIP+" tcp dport 80 dnat to "+labRS+":8080")
	hl.dir.MustRun(t, "nft", "add table ip6 lvs_test_dnat; add chain ip6 lvs_test_dnat pre { type nat hook prerouting priority dstnat; }; "+
		"add rule ip6 lvs_test_dnat pre ip6 daddr "+labVIP6+" tcp dport 80 dnat to ["+labRS6+"]:8080")
	hl.pinDir = filepath.Join(filepath.Dir(toatest.PinDir(t)), "fullnat")
	return hl
}

func labSpec() Spec {
	return Spec{
		Pools: []Pool{{Addrs: addrs(labLA, labLA2), TOA: format.K254}, {Addrs: addrs(labLA6, labLA62), TOA: format.K254b}},
		Targets: []Target{
			{Service: "web", Protocol: ProtoTCP, VIP: netip.MustParseAddr(labVIP), VPort: 80, RS: netip.MustParseAddr(labRS), RPort: 8080, Pool: 0},
			{Service: "web6", Protocol: ProtoTCP, VIP: netip.MustParseAddr(labVIP6), VPort: 80, RS: netip.MustParseAddr(labRS6), RPort: 8080, Pool: 1},
		},
	}
}

// manager runs fn with a Manager opened in the director's namespace
// (every call that talks to the kernel must run there).
func (hl *hostLab) manager(t *testing.T, fn func(m *Manager) error) {
	t.Helper()
	err := hl.dir.Do(func() error {
		m, err := Open(Options{Table: "lvs_test_fullnat", PinDir: hl.pinDir})
		if err != nil {
			return err
		}
		defer m.Close()
		return fn(m)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// save stands for the director's state file: it checks the record can
// be written.
func (hl *hostLab) save() error {
	hl.saves++
	_, err := json.Marshal(hl.rec)
	return err
}

// serve answers each connection on the real server with the address
// its kernel sees as the peer.
func (hl *hostLab) serve(t *testing.T) {
	t.Helper()
	for _, a := range []string{labRS + ":8080", "[" + labRS6 + "]:8080"} {
		ln, err := hl.rs.Listen("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(5 * time.Second))
					buf := make([]byte, 64)
					if _, err := c.Read(buf); err != nil {
						return
					}
					fmt.Fprintf(c, "%s\n", c.RemoteAddr())
				}()
			}
		}()
	}
}

// connect makes n connections to vip through the director and returns,
// for each, the local address and port the real server saw -> the
// client's address and port.
func (hl *hostLab) connect(t *testing.T, vip string, n int) map[netip.AddrPort]netip.AddrPort {
	t.Helper()
	out := map[netip.AddrPort]netip.AddrPort{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := hl.client.Dial("tcp", net.JoinHostPort(vip, "80"), 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, "hello"); err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(c)
			if err != nil {
				errs <- err
				return
			}
			seen, err := netip.ParseAddrPort(strings.TrimSpace(string(b)))
			if err != nil {
				errs <- fmt.Errorf("reply %q: %w", b, err)
				return
			}
			mu.Lock()
			out[netip.AddrPortFrom(seen.Addr().Unmap(), seen.Port())] = netip.MustParseAddrPort(c.LocalAddr().String())
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

func (hl *hostLab) counters(t *testing.T) map[string]uint64 {
	t.Helper()
	var c map[string]uint64
	hl.manager(t, func(m *Manager) error {
		if _, err := m.Apply(labSpec(), &hl.rec, hl.save, false); err != nil {
			return err
		}
		var ok bool
		var err error
		c, ok, err = m.Counters()
		if err == nil && !ok {
			err = fmt.Errorf("no counters")
		}
		return err
	})
	return c
}

// traffic checks connections over both families and the wire. With
// complete, the client computes full checksums and the real server's
// kernel verifies them (no checksum offload on either side).
func (hl *hostLab) traffic(t *testing.T, complete bool) {
	t.Helper()
	hl.client.SetChecksumOffload(t, "eth0", !complete, true)
	hl.rs.SetChecksumOffload(t, "eth0", true, !complete)
	csumErrs := hl.csumErrors(t)
	capt := hl.rs.Capture(t, "eth0")
	before := hl.counters(t)
	conns4 := hl.connect(t, labVIP, 20)
	conns6 := hl.connect(t, labVIP6, 20)
	// Every connection got one of the local addresses, and each address
	// took some (the pool's rules agree on which one).
	for fam, conns := range map[string]map[netip.AddrPort]netip.AddrPort{"IPv4": conns4, "IPv6": conns6} {
		used := map[string]int{}
		for l := range conns {
			used[l.Addr().String()]++
		}
		want := []string{labLA, labLA2}
		if fam == "IPv6" {
			want = []string{labLA6, labLA62}
		}
		if len(used) != 2 || used[want[0]] == 0 || used[want[1]] == 0 {
			t.Fatalf("%s: the real server saw connections from %v, want both of %v", fam, used, want)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if err := capt.Stop(); err != nil {
		t.Fatal(err)
	}
	for fam, conns := range map[string]map[netip.AddrPort]netip.AddrPort{"IPv4": conns4, "IPv6": conns6} {
		rep, err := fullnattest.CheckWire(capt.Packets(), conns, 254)
		t.Logf("%s wire: %s", fam, rep)
		if err != nil {
			t.Fatalf("%s wire: %v", fam, err)
		}
		if rep.Flows != len(conns) || rep.FirstCarry != len(conns) {
			t.Fatalf("%s: %d flows, %d handshake ACKs with the option, want %d", fam, rep.Flows, rep.FirstCarry, len(conns))
		}
		if complete && rep.NotReady != 0 || !complete && rep.Complete != 0 {
			t.Fatalf("%s: checksums not as the offloads say", fam)
		}
	}
	if n := hl.csumErrors(t); n != csumErrs {
		t.Fatalf("the real server's kernel counted %d bad checksums", n-csumErrs)
	}
	after := hl.counters(t)
	if d := after["inserted"] - before["inserted"]; d < 80 {
		t.Fatalf("inserted went up by %d for 40 connections (handshake ACK and first data each)", d)
	}
	for _, k := range []string{"no_conntrack", "error", "no_room", "mtu"} {
		if after[k] != before[k] {
			t.Fatalf("%s went from %d to %d", k, before[k], after[k])
		}
	}
}

// csumErrors is the real server's count of TCP segments with a bad
// checksum (Tcp InCsumErrors, which IPv6 counts in too).
func (hl *hostLab) csumErrors(t *testing.T) int {
	t.Helper()
	n, found := 0, 0
	for _, f := range []string{"/proc/net/snmp"} {
		out := hl.rs.MustRun(t, "cat", f)
		lines := strings.Split(out, "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "Tcp: ") && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "Tcp: ") {
				names, vals := strings.Fields(l), strings.Fields(lines[i+1])
				for j := range names {
					if names[j] == "InCsumErrors" && j < len(vals) {
						v, _ := strconv.Atoi(vals[j])
						n += v
						found++
					}
				}
			}
		}
	}
	if found != 1 {
		t.Fatalf("found %d checksum error counters of the real server, want 1", found)
	}
	return n
}

func TestManagerOnTheRealPath(t *testing.T) {
	hl := newHostLab(t)
	hl.serve(t)
	hl.manager(t, func(m *Manager) error {
		changes, err := m.Apply(labSpec(), &hl.rec, hl.save, true)
		t.Logf("apply: %q", changes)
		return err
	})
	if hl.rec.NFTable != "lvs_test_fullnat" || hl.rec.PinDir != hl.pinDir || len(hl.rec.Hooks) != 1 || hl.rec.Hooks[0].Interface != "eth1" || hl.rec.Hooks[0].Mode != ModeTCX {
		t.Fatalf("record: %+v", hl.rec)
	}
	hl.traffic(t, false)
	hl.traffic(t, true)

	// A restarted director finds everything in place and changes nothing.
	saves := hl.saves
	hl.manager(t, func(m *Manager) error {
		changes, err := m.Apply(labSpec(), &hl.rec, hl.save, true)
		if err == nil && len(changes) != 0 {
			err = fmt.Errorf("a second apply changed %q", changes)
		}
		return err
	})
	if hl.saves != saves {
		t.Fatal("a second apply wrote the record")
	}

	// Remove takes everything away.
	hl.manager(t, func(m *Manager) error {
		changes, err := m.Remove(&hl.rec, hl.save)
		t.Logf("remove: %q", changes)
		return err
	})
	if !hl.rec.Empty() {
		t.Fatalf("record after remove: %+v", hl.rec)
	}
	if _, err := os.Stat(hl.pinDir); !os.IsNotExist(err) {
		t.Fatalf("pin directory left: %v", err)
	}
	if out, _ := hl.dir.Run(t, "nft", "list", "tables"); strings.Contains(out, "lvs_test_fullnat") {
		t.Fatalf("tables left:\n%s", out)
	}

	// The tc fallback (kernels before 6.6), as a recorded hook asks.
	link, err := hl.dir.Handle().LinkByName("eth1")
	if err != nil {
		t.Fatal(err)
	}
	hl.rec.Hooks = []Hook{{Interface: "eth1", Ifindex: link.Attrs().Index, Mode: ModeTC}}
	hl.manager(t, func(m *Manager) error {
		_, err := m.Apply(labSpec(), &hl.rec, hl.save, true)
		return err
	})
	if h := hl.rec.Hooks; len(h) != 1 || h[0].Mode != ModeTC || !h[0].Clsact {
		t.Fatalf("tc hook record: %+v", h)
	}
	if out := hl.dir.MustRun(t, "tc", "filter", "show", "dev", "eth1", "egress"); !strings.Contains(out, tcName) {
		t.Fatalf("no filter:\n%s", out)
	}
	hl.traffic(t, true)
	hl.manager(t, func(m *Manager) error {
		_, err := m.Remove(&hl.rec, hl.save)
		return err
	})
	if out := hl.dir.MustRun(t, "tc", "qdisc", "show", "dev", "eth1"); strings.Contains(out, "clsact") {
		t.Fatalf("the clsact qdisc lvs-node added is left:\n%s", out)
	}
}
