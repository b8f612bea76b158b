//go:build e2e

package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// rsLabDirector is the director in front of the real-server lab: DR and
// TUN over rs1 and rs2 on the lan, NAT to rs3 on the back network.
const rsLabDirector = `director:
  state_dir: %[1]s/director
  resync_interval: 1s
listen:
  control: %[1]s/director.sock
virtual_services:
  - name: dr
    vip: 10.0.0.100
    port: 80
    scheduler: rr
    bind_vip: true
    real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]
  - name: tun
    vip: 10.0.0.101
    port: 80
    scheduler: rr
    forwarding: tun
    bind_vip: true
    real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]
  - name: nat
    vip: 10.0.0.102
    port: 80
    scheduler: rr
    forwarding: nat
    bind_vip: true
    real_servers: [{address: 10.2.0.13}]
`

// TestRealserverLab runs lvs-node realserver on every real server of a DR,
// TUN and NAT cluster (rs1 as a daemon, rs2 and rs3 with up/down) with
// lvs-node director in front, and checks traffic, ARP suppression,
// self-repair, the control socket, idempotence and exact restoration.
func TestRealserverLab(t *testing.T) {
	modprobe(t, "ip_vs")
	l := topo.New(t)
	lan := l.Net("lan", "10.0.0.0/24")
	back := l.Net("back", "10.2.0.0/24")
	client := l.Host("client", topo.On(lan, "10.0.0.2"))
	dir := l.Host("dir", topo.On(lan, "10.0.0.1"), topo.On(back, "10.2.0.1"))
	rs1 := l.Host("rs1", topo.On(lan, "10.0.0.11"))
	rs2 := l.Host("rs2", topo.On(lan, "10.0.0.12"))
	rs3 := l.Host("rs3", topo.On(back, "10.2.0.13"))
	const vipDR, vipTUN, vipNAT = "10.0.0.100", "10.0.0.101", "10.0.0.102"
	tmp := t.TempDir()

	rs1.ServeName(t, 80)
	rs2.ServeName(t, 80)
	rs3.ServeName(t, 80)

	// Without lvs-node, an address on a real server's lo is answered by
	// ARP from its eth0: the problem lvs-node solves, and proof that the
	// ARP probe sees real servers' answers. (A throwaway address, removed
	// at once.)
	rs1lo, err := rs1.Handle().LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	probe, _ := netlink.ParseAddr("10.0.0.199/32")
	if err := rs1.Handle().AddrAdd(rs1lo, probe); err != nil {
		t.Fatal(err)
	}
	macs := arpWho(t, client, "eth0", netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.199"))
	if len(macs) != 1 || !bytes.Equal(macs[0], rs1.MAC(t, "eth0")) {
		t.Fatalf("control: ARP for an address on rs1's lo answered by %v, want rs1 %s", macs, rs1.MAC(t, "eth0"))
	}
	if err := rs1.Handle().AddrDel(rs1lo, probe); err != nil {
		t.Fatal(err)
	}
	// Strict reverse-path filtering, as many distributions set it: TUN
	// only works once lvs-node lowers it for tunl0.
	for _, rs := range []*topo.Host{rs1, rs2} {
		for _, dev := range []string{"all", "default"} {
			rs.Sysctl(t, "net/ipv4/conf/"+dev+"/rp_filter", "1")
		}
	}
	before1 := rsState(t, rs1)
	before2 := rsState(t, rs2)

	// rs1: the daemon, DR on lo and TUN.
	sock1 := filepath.Join(tmp, "run", "rs1.sock")
	rs1Body := `  watch_interval: 500ms
  vips:
    - {address: 10.0.0.100, mode: dr}
    - {address: 10.0.0.101, mode: tun}
listen:
  control: ` + sock1 + "\n"
	cfg1 := writeRSConfig(t, "rs1", rs1Body)
	daemon := rs1.Start(t, "lvs-node", "realserver", "--config", cfg1)
	if !daemon.WaitOutput("real server ready", 20*time.Second) {
		t.Fatalf("daemon on rs1 not ready:\n%s", daemon.Output())
	}
	// rs2: one-shot, DR on a dummy interface and TUN.
	cfg2 := writeRSConfig(t, "rs2", `  vips:
    - {address: 10.0.0.100, mode: dr, interface: dummy}
    - {address: 10.0.0.101, mode: tun}
`)
	out := rs2.MustRun(t, "lvs-node", "realserver", "up", "--config", cfg2)
	if strings.HasSuffix(out, "\n0 changes\n") || !strings.Contains(out, "ip addr add 10.0.0.100/32 dev lvs0") {
		t.Fatalf("first up on rs2:\n%s", out)
	}
	if out := rs2.MustRun(t, "lvs-node", "realserver", "up", "--config", cfg2); out != "0 changes\n" {
		t.Fatalf("second up on rs2 is not a no-op:\n%s", out)
	}
	if !moduleLoaded(t, "ipip") {
		t.Fatal("ipip not loaded after lvs-node realserver up with a tun VIP")
	}
	for _, rs := range []*topo.Host{rs1, rs2} {
		for _, dev := range []string{"all", "tunl0"} {
			if got := rs.ReadSysctl(t, "net/ipv4/conf/"+dev+"/rp_filter"); got != "0" {
				t.Errorf("%s: %s rp_filter = %s, want 0", rs.Name, dev, got)
			}
		}
		if got := rs.ReadSysctl(t, "net/ipv4/conf/all/arp_ignore"); got != "1" {
			t.Errorf("%s: all/arp_ignore = %s", rs.Name, got)
		}
	}

	// rs3: one-shot NAT; its default route goes through the director
	// and the route it had before is recorded.
	prev, err := netlink.ParseAddr("10.2.0.254/24")
	if err != nil {
		t.Fatal(err)
	}
	rs3eth, err := rs3.Handle().LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := rs3.Handle().RouteAdd(&netlink.Route{LinkIndex: rs3eth.Attrs().Index, Gw: prev.IP}); err != nil {
		t.Fatalf("previous default route on rs3: %v", err)
	}
	before3 := rsState(t, rs3) + "\n" + routes(t, rs3)
	cfg3 := writeRSConfig(t, "rs3", `  vips:
    - {address: 10.0.0.102, mode: nat, gateway: 10.2.0.1}
`)
	out = rs3.MustRun(t, "lvs-node", "realserver", "up", "--config", cfg3)
	if !strings.Contains(out, "ip route add default via 10.2.0.1\n") {
		t.Fatalf("first up on rs3:\n%s", out)
	}
	if out := rs3.MustRun(t, "lvs-node", "realserver", "up", "--config", cfg3); out != "0 changes\n" {
		t.Fatalf("second up on rs3 is not a no-op:\n%s", out)
	}
	if got := routes(t, rs3); !strings.Contains(got, "default via 10.2.0.1 dev eth0") {
		t.Fatalf("rs3 routes after up:\n%s", got)
	}

	// lvs-node director in front: DR, TUN and NAT services with the VIPs
	// bound on the director.
	dcfg := filepath.Join(tmp, "director.yaml")
	if err := os.WriteFile(dcfg, []byte(fmt.Sprintf(rsLabDirector, tmp)), 0o600); err != nil {
		t.Fatal(err)
	}
	dp := dir.Start(t, "lvs-node", "director", "--config", dcfg)
	if !dp.WaitOutput("msg=applied", 60*time.Second) {
		t.Fatalf("director did not apply:\n%s", dp.Output())
	}
	table := dir.MustRun(t, "ipvsadm", "-Sn")
	for _, want := range []string{"-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g", "-a -t 10.0.0.101:80 -r 10.0.0.12:80 -i",
		"-a -t 10.0.0.102:80 -r 10.2.0.13:80 -m"} {
		if !strings.Contains(table, want) {
			t.Fatalf("director table lacks %q:\n%s", want, table)
		}
	}

	// DR and TUN carry TCP to both real servers.
	for _, vip := range []string{vipDR, vipTUN} {
		seen := map[string]int{}
		for i := 0; i < 4; i++ {
			got, err := client.Get(vip+":80", 5*time.Second)
			if err != nil {
				t.Fatalf("request %d to %s: %v\nrs1 daemon:\n%s", i, vip, err, daemon.Output())
			}
			seen[got]++
		}
		if seen["rs1"] != 2 || seen["rs2"] != 2 {
			t.Errorf("%s answered by %v, want rs1 and rs2 twice each", vip, seen)
		}
	}

	// NAT carries TCP to rs3 through the director.
	for i := 0; i < 3; i++ {
		if got, err := client.Get(vipNAT+":80", 5*time.Second); err != nil || got != "rs3" {
			t.Fatalf("NAT request %d: %q, %v\ndirector:\n%s", i, got, err, dp.Output())
		}
	}

	// ARP for each VIP from the client: exactly one answer, the director's.
	dirMAC := dir.MAC(t, "eth0")
	for _, vip := range []string{vipDR, vipTUN} {
		macs := arpWho(t, client, "eth0", netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr(vip))
		if len(macs) != 1 || !bytes.Equal(macs[0], dirMAC) {
			t.Errorf("ARP for %s answered by %v, want only the director %s (rs1 %s, rs2 %s)", vip, macs, dirMAC,
				rs1.MAC(t, "eth0"), rs2.MAC(t, "eth0"))
		}
	}

	// A VIP deleted by hand on rs1 is back (within a watch period of 500ms
	// on a quiet machine; the bound allows for a loaded one), and
	// tunl0 set down comes back up; each repair is logged once.
	lo, err := rs1.Handle().LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := netlink.ParseAddr(vipDR + "/32")
	if err := rs1.Handle().AddrDel(lo, a); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitUntil(t, 5*time.Second, "VIP back on rs1 lo", func() bool { return hasAddr(t, rs1, "lo", vipDR+"/32") })
	t.Logf("VIP back after %v", time.Since(start).Round(time.Millisecond))
	tun, err := rs1.Handle().LinkByName("tunl0")
	if err != nil {
		t.Fatal(err)
	}
	if err := rs1.Handle().LinkSetDown(tun); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "tunl0 up again on rs1", func() bool {
		l, err := rs1.Handle().LinkByName("tunl0")
		return err == nil && l.Attrs().Flags&net.FlagUp != 0
	})
	rs1.Sysctl(t, "net/ipv4/conf/lo/arp_announce", "0")
	waitUntil(t, 5*time.Second, "lo/arp_announce repaired", func() bool {
		return rs1.ReadSysctl(t, "net/ipv4/conf/lo/arp_announce") == "2"
	})
	time.Sleep(600 * time.Millisecond) // one more watch period: no repeated repair lines
	logs := daemon.Output()
	for _, line := range []string{`change="ip addr add 10.0.0.100/32 dev lo label lo:lvs"`, `change="ip link set tunl0 up"`,
		`change="sysctl -w net/ipv4/conf/lo/arp_announce=2"`} {
		if n := strings.Count(logs, "msg=repaired "+line); n != 1 {
			t.Errorf("repair %s logged %d times, want once:\n%s", line, n, logs)
		}
	}
	if got, err := client.Get(vipDR+":80", 5*time.Second); err != nil || got == "" {
		t.Errorf("DR after repairs: %q, %v", got, err)
	}

	// The control socket: mode 0600, status reports what is applied with
	// the recorded originals and the repairs so far.
	fi, err := os.Stat(sock1)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket %s: mode %v, want a socket with 0600", sock1, fi.Mode())
	}
	// A status asked while the daemon is in a pass of its loop is the last
	// one it computed, marked busy: ask until one is fresh.
	var status string
	waitUntil(t, 10*time.Second, "a status that is not busy", func() bool {
		status = rs1.MustRun(t, "lvs-node", "realserver", "status", "--config", cfg1)
		return !strings.HasPrefix(status, "busy:")
	})
	t.Logf("status on rs1:\n%s", status)
	for _, want := range []string{"10.0.0.100 dr on lo: applied\n", "10.0.0.101 tun on tunl0: applied\n",
		"net/ipv4/conf/all/arp_ignore = 1, original 0\n", "net/ipv4/conf/all/rp_filter = 0, original 1\n",
		"net/ipv4/conf/tunl0/rp_filter = 0, original ", "ip addr add 10.0.0.100/32 dev lo label lo:lvs\n",
		fmt.Sprintf("repairs: %d\n", strings.Count(daemon.Output(), "msg=repaired "))} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q", want)
		}
	}
	// A reload the host refuses (the gateway is on no connected network)
	// changes nothing; the same file again is a no-op.
	applied1 := rsState(t, rs1)
	rsWriteFile(t, cfg1, strings.Replace(rsReadFile(t, cfg1), "    - {address: 10.0.0.101, mode: tun}\n",
		"    - {address: 10.0.0.101, mode: tun}\n    - {address: 10.0.0.150, mode: nat, gateway: 172.16.0.1}\n", 1))
	if out, err := rs1.Run(t, "lvs-node", "realserver", "reload", "--config", cfg1); err == nil ||
		!strings.Contains(out, "realserver.vips[2].gateway: gateway 172.16.0.1 is not on a connected network") {
		t.Errorf("reload of a refused file: %v\n%s", err, out)
	}
	if got := rsState(t, rs1); got != applied1 {
		t.Errorf("refused reload changed rs1:\n%s\nwant:\n%s", got, applied1)
	}
	rsWriteFile(t, cfg1, strings.Replace(rsReadFile(t, cfg1), "    - {address: 10.0.0.150, mode: nat, gateway: 172.16.0.1}\n", "", 1))
	if out := rs1.MustRun(t, "lvs-node", "realserver", "reload", "--config", cfg1); out != "reloaded, 0 changes\n" {
		t.Errorf("reload of the same file:\n%s", out)
	}
	if status := rs1.MustRun(t, "lvs-node", "realserver", "status", "--socket", sock1); !strings.Contains(status, "reloads: 1\n") {
		t.Errorf("status after reload:\n%s", status)
	}

	// down brings every sysctl, address and route back.
	out = rs3.MustRun(t, "lvs-node", "realserver", "down", "--config", cfg3)
	t.Logf("down on rs3:\n%s", out)
	if got := rsState(t, rs3) + "\n" + routes(t, rs3); got != before3 {
		t.Errorf("rs3 not restored:\n%s\nwant:\n%s", got, before3)
	}
	out = rs2.MustRun(t, "lvs-node", "realserver", "down", "--config", cfg2)
	t.Logf("down on rs2:\n%s", out)
	// Stopping the daemon leaves rs1 serving; down restores it.
	applied1 = rsState(t, rs1)
	if err := daemon.Stop(10 * time.Second); err != nil {
		t.Errorf("daemon exit: %v\n%s", err, daemon.Output())
	}
	if !strings.Contains(daemon.Output(), "leaving the configuration in place") {
		t.Errorf("daemon did not say it leaves the host serving:\n%s", daemon.Output())
	}
	if got := rsState(t, rs1); got != applied1 {
		t.Errorf("stopping the daemon changed rs1:\n%s\nwant:\n%s", got, applied1)
	}
	if _, err := os.Lstat(sock1); !os.IsNotExist(err) {
		t.Errorf("control socket left behind after exit: %v", err)
	}
	out = rs1.MustRun(t, "lvs-node", "realserver", "down", "--config", cfg1)
	t.Logf("down on rs1:\n%s", out)
	for _, c := range []struct {
		h      *topo.Host
		before string
	}{{rs1, before1}, {rs2, before2}} {
		if got := rsState(t, c.h); got != c.before {
			t.Errorf("%s not restored:\n%s\nwant:\n%s", c.h.Name, got, c.before)
		}
		if l, err := c.h.Handle().LinkByName("tunl0"); err == nil && l.Attrs().Flags&net.FlagUp != 0 {
			t.Errorf("%s: tunl0 still up after down", c.h.Name)
		}
	}
}

func writeRSConfig(t *testing.T, name, vips string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, name+".yaml")
	body := "realserver:\n  state_dir: " + filepath.Join(dir, "state") + "\n" + vips
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// rsState prints a real server's addresses and ARP/rp_filter sysctls of
// all, lo and eth0 (tunl0 and lvs0 come and go with ipip and lvs-node).
func rsState(t *testing.T, h *topo.Host) string {
	t.Helper()
	var lines []string
	for _, dev := range []string{"all", "default", "lo", "eth0"} {
		for _, k := range []string{"arp_ignore", "arp_announce", "rp_filter"} {
			lines = append(lines, dev+"/"+k+"="+h.ReadSysctl(t, "net/ipv4/conf/"+dev+"/"+k))
		}
	}
	links, err := h.Handle().LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Attrs().Name == "tunl0" {
			continue
		}
		lines = append(lines, "link "+l.Attrs().Name)
		addrs, err := h.Handle().AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			lines = append(lines, fmt.Sprintf("addr %s dev %s label %s", a.IPNet, l.Attrs().Name, a.Label))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// routes prints a host's IPv4 main-table routes.
func routes(t *testing.T, h *topo.Host) string {
	t.Helper()
	return strings.TrimSpace(h.MustRun(t, "ip", "-4", "route", "show", "table", "main"))
}

func rsReadFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func rsWriteFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func hasAddr(t *testing.T, h *topo.Host, dev, prefix string) bool {
	t.Helper()
	l, err := h.Handle().LinkByName(dev)
	if err != nil {
		return false
	}
	addrs, err := h.Handle().AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IPNet.String() == prefix {
			return true
		}
	}
	return false
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// arpWho broadcasts one ARP request for target from h's ifname and returns
// the sender MAC of every reply seen within a second.
func arpWho(t *testing.T, h *topo.Host, ifname string, src, target netip.Addr) []net.HardwareAddr {
	t.Helper()
	mac := h.MAC(t, ifname)
	var fd int
	var ifindex int
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		ifindex = ifi.Index
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	// Ethernet header + ARP request.
	frame := make([]byte, 0, 42)
	frame = append(frame, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	frame = append(frame, mac...)
	frame = binary.BigEndian.AppendUint16(frame, unix.ETH_P_ARP)
	frame = binary.BigEndian.AppendUint16(frame, 1)      // Ethernet
	frame = binary.BigEndian.AppendUint16(frame, 0x0800) // IPv4
	frame = append(frame, 6, 4)
	frame = binary.BigEndian.AppendUint16(frame, 1) // request
	frame = append(frame, mac...)
	frame = append(frame, src.AsSlice()...)
	frame = append(frame, 0, 0, 0, 0, 0, 0)
	frame = append(frame, target.AsSlice()...)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex, Halen: 6}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if err := unix.Sendto(fd, frame, 0, to); err != nil {
		t.Fatalf("send ARP request: %v", err)
	}
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	var replies []net.HardwareAddr
	buf := make([]byte, 1500)
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue // time-out: look at the clock again
		}
		p := buf[:n]
		if len(p) < 42 || binary.BigEndian.Uint16(p[12:]) != unix.ETH_P_ARP || binary.BigEndian.Uint16(p[20:]) != 2 {
			continue
		}
		if !bytes.Equal(p[28:32], target.AsSlice()) || !bytes.Equal(p[32:38], mac) {
			continue
		}
		replies = append(replies, net.HardwareAddr(slices.Clone(p[22:28])))
	}
	return replies
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
