package rsagent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/hostnet"
	"github.com/lvs-node/lvs-node/internal/kerneltest"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// hostSetup brings lo up and adds a veth pair eth0.100/peer0 with
// 10.0.0.11/24 and fd00::11/64, plus a default route via 10.0.0.1.
func hostSetup(t *testing.T) {
	t.Helper()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	must(t, netlink.LinkSetUp(lo))
	must(t, netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0.100"}, PeerName: "peer0"}))
	eth, err := netlink.LinkByName("eth0.100")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := netlink.LinkByName("peer0")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.0.0.11/24", "fd00::11/64"} {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(a, ":") {
			addr.Flags = 0x02 // IFA_F_NODAD: usable at once
		}
		must(t, netlink.AddrAdd(eth, addr))
	}
	must(t, netlink.LinkSetUp(eth))
	must(t, netlink.LinkSetUp(peer))
	_, def, _ := netlinkParseCIDR("0.0.0.0/0")
	must(t, netlink.RouteAdd(&netlink.Route{Dst: def, Gw: mustIP("10.0.0.1"), LinkIndex: eth.Attrs().Index}))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// hostState prints links, addresses, main routes and the ARP/rp_filter
// sysctls of every device, read straight from the kernel.
func hostState(t *testing.T, k *hostnet.NetlinkKernel) string {
	t.Helper()
	s, err := k.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range s.Links {
		lines = append(lines, fmt.Sprintf("link %s type %s up=%v", l.Name, l.Kind, l.Up))
		for _, name := range []string{"arp_ignore", "arp_announce", "rp_filter"} {
			b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + l.Name + "/" + name)
			if err == nil {
				lines = append(lines, "sysctl "+l.Name+"/"+name+"="+strings.TrimSpace(string(b)))
			}
		}
	}
	for _, name := range []string{"arp_ignore", "arp_announce", "rp_filter"} {
		b, err := os.ReadFile("/proc/sys/net/ipv4/conf/all/" + name)
		must(t, err)
		lines = append(lines, "sysctl all/"+name+"="+strings.TrimSpace(string(b)))
	}
	// IPv6 link-local addresses and routes appear on their own, some time
	// after a link comes up: leave them out.
	for _, a := range s.Addrs {
		if !a.Prefix.Addr().IsLinkLocalUnicast() {
			lines = append(lines, a.String()+" label "+a.Label)
		}
	}
	for _, r := range s.Routes {
		if !r.Dst.Addr().IsLinkLocalUnicast() {
			lines = append(lines, r.String())
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func realAgent(t *testing.T, body string) (*Agent, *hostnet.NetlinkKernel, *Config) {
	t.Helper()
	c, doc := loadYAML(t, t.TempDir(), body)
	k, err := hostnet.NewNetlinkKernel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	rec, err := OpenSysctls(c)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(c, doc, Deps{Kernel: k, Sysctls: rec, Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return a, k, c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func readSys(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + key)
	must(t, err)
	return strings.TrimSpace(string(b))
}

func TestRealKernelDRAndNATUpTwiceDown(t *testing.T) {
	kerneltest.FreshNetns(t)
	hostSetup(t)
	a, k, c := realAgent(t, `realserver:
  state_dir: STATE
  vips:
    - {address: 10.0.0.100, mode: dr}
    - {address: "fd00::100", mode: dr}
    - {address: 192.168.50.100, mode: nat, gateway: 10.0.0.2}
    - {address: 192.168.50.101, mode: nat, gateway: 10.0.0.2, routes: [192.0.2.0/24]}
  arp: {interfaces: [eth0.100]}
`)
	before := hostState(t, k)
	changes, err := a.Up()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("up:\n%s", strings.Join(changes, "\n"))
	s, err := k.Snapshot()
	must(t, err)
	for _, want := range []Addr{
		{Dev: "lo", Prefix: mustPrefix("10.0.0.100/32"), Label: "lo:lvs"},
		{Dev: "lo", Prefix: mustPrefix("fd00::100/128")},
	} {
		i := slices.IndexFunc(s.Addrs, func(x Addr) bool { return x.Dev == want.Dev && x.Prefix == want.Prefix })
		if i < 0 {
			t.Errorf("%s missing after up", want)
		} else if want.Label != "" && s.Addrs[i].Label != want.Label {
			t.Errorf("%s has label %q", want, s.Addrs[i].Label)
		}
	}
	if r, ok := s.RouteTo(mustPrefix("0.0.0.0/0"), 0); !ok || r.Gateway.String() != "10.0.0.2" {
		t.Errorf("default route = %v, %v; want via 10.0.0.2", r, ok)
	}
	if r, ok := s.RouteTo(mustPrefix("192.0.2.0/24"), 0); !ok || r.Gateway.String() != "10.0.0.2" {
		t.Errorf("route 192.0.2.0/24 = %v, %v; want via 10.0.0.2", r, ok)
	}
	for _, dev := range []string{"all", "lo", "eth0.100"} {
		if got := readSys(t, "net/ipv4/conf/"+dev+"/arp_ignore"); got != "1" {
			t.Errorf("%s arp_ignore = %s", dev, got)
		}
		if got := readSys(t, "net/ipv4/conf/"+dev+"/arp_announce"); got != "2" {
			t.Errorf("%s arp_announce = %s", dev, got)
		}
	}
	if len(changes) != 10 { // 2 all + 4 dev sysctls, 2 addresses, 2 routes
		t.Errorf("up made %d changes, want 10", len(changes))
	}
	mid := hostState(t, k)
	changes, err = a.Up()
	if err != nil || len(changes) != 0 {
		t.Fatalf("second up: %q, %v", changes, err)
	}
	if got := hostState(t, k); got != mid {
		t.Errorf("second up changed the host:\n%s\nwas:\n%s", got, mid)
	}
	// Down from a fresh agent, as "lvs-node realserver down" would.
	rec, err := OpenSysctls(c)
	must(t, err)
	a2, err := New(c, a.doc, Deps{Kernel: k, Sysctls: rec})
	must(t, err)
	changes, err = a2.Down()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("down:\n%s", strings.Join(changes, "\n"))
	if got := hostState(t, k); got != before {
		t.Errorf("down did not restore the host:\n%s\nwant:\n%s", got, before)
	}
	changes, err = a2.Down()
	if err != nil || len(changes) != 0 {
		t.Errorf("second down: %q, %v", changes, err)
	}
}

func TestRealKernelKeepsForeignAddressAndSysctl(t *testing.T) {
	kerneltest.FreshNetns(t)
	hostSetup(t)
	// The VIP is already on lo (put there by hand), and all/arp_ignore
	// already holds the wanted value: neither belongs to lvs-node.
	lo, err := netlink.LinkByName("lo")
	must(t, err)
	addr, err := netlink.ParseAddr("10.0.0.100/32")
	must(t, err)
	must(t, netlink.AddrAdd(lo, addr))
	must(t, os.WriteFile("/proc/sys/net/ipv4/conf/all/arp_ignore", []byte("1"), 0o644))
	a, k, _ := realAgent(t, `realserver:
  state_dir: STATE
  vips:
    - {address: 10.0.0.100, mode: dr}
`)
	before := hostState(t, k)
	if _, err := a.Up(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Down(); err != nil {
		t.Fatal(err)
	}
	if got := hostState(t, k); got != before {
		t.Errorf("down touched what lvs-node did not add:\n%s\nwant:\n%s", got, before)
	}
}

func TestRealKernelBadInputChangesNothing(t *testing.T) {
	kerneltest.FreshNetns(t)
	hostSetup(t)
	a, k, c := realAgent(t, `realserver:
  state_dir: STATE
  vips:
    - {address: 10.0.0.100, mode: dr}
    - {address: 10.0.0.11, mode: dr}
    - {address: 192.168.50.100, mode: nat, gateway: 172.16.0.1}
`)
	before := hostState(t, k)
	_, err := a.Up()
	if err == nil {
		t.Fatal("up accepted a VIP that is eth0.100's address and an unreachable gateway")
	}
	for _, want := range []string{"vips[1].address: VIP 10.0.0.11 is already an address of this host on eth0.100",
		"vips[2].gateway: gateway 172.16.0.1 is not on a connected network"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if got := hostState(t, k); got != before {
		t.Errorf("failed up changed the host:\n%s\nwant:\n%s", got, before)
	}
	if entries, _ := os.ReadDir(c.Realserver.StateDir); len(entries) != 0 {
		t.Errorf("failed up wrote state: %v", entries)
	}
}

// TestRealKernelDaemonRepairsAndRestores: the daemon repairs, stopping it
// leaves the host serving, and down restores it.
func TestRealKernelDaemonRepairsAndRestores(t *testing.T) {
	ns := kerneltest.FreshNetns(t)
	hostSetup(t)
	a, k, _ := realAgent(t, `realserver:
  state_dir: STATE
  watch_interval: 200ms
  vips:
    - {address: 10.0.0.100, mode: dr}
`)
	before := hostState(t, k)
	ctx, cancel := context.WithCancel(context.Background())
	m := NewMetrics()
	sock := filepath.Join(t.TempDir(), "run", "rs.sock")
	var wg sync.WaitGroup
	var runErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The daemon's kernel work must happen in the test namespace. The
		// thread is never unlocked: it ends with the goroutine, so no
		// other goroutine runs on a thread left in that namespace.
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			runErr = err
			return
		}
		runErr = a.Run(ctx, RunOptions{Metrics: m, Control: sock})
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	vip := Addr{Dev: "lo", Prefix: mustPrefix("10.0.0.100/32")}
	waitFor(t, 3*time.Second, "VIP bound", func() bool { s, _ := k.Snapshot(); return s.HasAddr(vip) })

	// A VIP removed by hand comes back (netlink notification).
	must(t, k.Del(vip))
	start := time.Now()
	waitFor(t, 2*time.Second, "VIP repaired", func() bool { s, _ := k.Snapshot(); return s.HasAddr(vip) })
	t.Logf("VIP back after %v", time.Since(start))

	// A sysctl changed by hand is put back within the watch interval.
	must(t, os.WriteFile("/proc/sys/net/ipv4/conf/all/arp_ignore", []byte("0"), 0o644))
	start = time.Now()
	waitFor(t, 2*time.Second, "sysctl repaired", func() bool { return readSys(t, "net/ipv4/conf/all/arp_ignore") == "1" })
	t.Logf("sysctl back after %v", time.Since(start))
	if got := testutil.ToFloat64(m.repairs); got != 2 {
		t.Errorf("repairs counted = %v, want 2", got)
	}
	// The control socket reports what is in place, read in the namespace.
	fi, err := os.Stat(sock)
	must(t, err)
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("control socket mode %v, want a socket with 0600", fi.Mode())
	}
	st, err := RequestStatus(context.Background(), sock)
	must(t, err)
	if len(st.VIPs) != 1 || st.VIPs[0].Where[0] != "lo" || !st.VIPs[0].Applied || st.Repairs != 2 {
		t.Errorf("status: %+v", st)
	}
	i := slices.IndexFunc(st.Sysctls, func(x SysctlStatus) bool { return x.Key == "net/ipv4/conf/all/arp_ignore" })
	if i < 0 || st.Sysctls[i].Current != "1" || !st.Sysctls[i].Recorded || st.Sysctls[i].Original != "0" {
		t.Errorf("status of all/arp_ignore: %+v", st.Sysctls)
	}

	cancel()
	wg.Wait()
	if runErr != nil {
		t.Fatalf("Run: %v", runErr)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
	if s, _ := k.Snapshot(); !s.HasAddr(vip) || readSys(t, "net/ipv4/conf/all/arp_ignore") != "1" {
		t.Errorf("stopping the daemon took the VIP or the ARP settings away:\n%s", hostState(t, k))
	}
	if _, err := a.Down(); err != nil {
		t.Fatal(err)
	}
	if got := hostState(t, k); got != before {
		t.Errorf("down did not restore the host:\n%s\nwant:\n%s", got, before)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func mustIP(s string) net.IP { return net.ParseIP(s) }

func netlinkParseCIDR(s string) (net.IP, *net.IPNet, error) { return net.ParseCIDR(s) }
