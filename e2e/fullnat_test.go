//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/lvs-node/lvs-node/director/fullnat/fullnattest"
	"github.com/lvs-node/lvs-node/lab/topo"
)

// fullNATLab: a client, a director with full-NAT services, and two real
// servers on another subnet with no route to the client and none
// through the director; they run lvs-node realserver with TOA.
//
//	client 198.51.100.10-13, 2001:db8:c::10-13 --- front --- dir .1 / 10.1.0.1 (local 10.1.0.2, .3) --- back --- rs1 10.1.0.11, rs2 10.1.0.12
type fullNATLab struct {
	client, dir, rs1, rs2 *topo.Host
	tmp, cfgPath, sock    string
}

const (
	fnVIP4 = "198.51.100.100"
	fnVIP6 = "2001:db8:c::100"
)

var (
	fnClients4 = []string{"198.51.100.10", "198.51.100.11", "198.51.100.12", "198.51.100.13"}
	fnClients6 = []string{"2001:db8:c::10", "2001:db8:c::11", "2001:db8:c::12", "2001:db8:c::13"}
	fnLocal    = []string{"10.1.0.2", "10.1.0.3", "2001:db8:1::2", "2001:db8:1::3"}
)

const fullNATServices = `  - name: web
    vip: 198.51.100.100
    port: 80
    scheduler: rr
    bind_vip: true
    forwarding: fullnat
    local_addresses: [10.1.0.2, 10.1.0.3]
    toa: {kind: 254}
    real_servers:
      - {address: 10.1.0.11, port: 8080}
      - {address: 10.1.0.12, port: 8080}
  - name: web6
    vip: "2001:db8:c::100"
    port: 80
    scheduler: rr
    forwarding: fullnat
    local_addresses: ["2001:db8:1::2", "2001:db8:1::3"]
    toa: {kind: 254}
    real_servers:
      - {address: "2001:db8:1::11", port: 8080}
      - {address: "2001:db8:1::12", port: 8080}
`

func newFullNATLab(t testing.TB) *fullNATLab {
	t.Helper()
	modprobe(t, "ip_vs")
	if !moduleLoaded(t, "ipv6") {
		modprobe(t, "ipv6")
	}
	l := topo.New(t)
	front := l.Net("front", "198.51.100.0/24")
	back := l.Net("back", "10.1.0.0/24")
	clientAddrs := append([]string{}, fnClients4...)
	for _, a := range fnClients6 {
		clientAddrs = append(clientAddrs, a+"/64")
	}
	f := &fullNATLab{
		client: l.Host("client", topo.On(front, clientAddrs...)),
		dir: l.Host("dir", topo.On(front, "198.51.100.1", "2001:db8:c::1/64", fnVIP6+"/64"),
			topo.On(back, "10.1.0.1", "10.1.0.2", "10.1.0.3", "2001:db8:1::1/64", "2001:db8:1::2/64", "2001:db8:1::3/64")),
		rs1: l.Host("rs1", topo.On(back, "10.1.0.11", "2001:db8:1::11/64")),
		rs2: l.Host("rs2", topo.On(back, "10.1.0.12", "2001:db8:1::12/64")),
	}
	f.client.MustRun(t, "ip", "route", "add", fnVIP4+"/32", "via", "198.51.100.1")
	f.tmp = t.TempDir()
	f.cfgPath = filepath.Join(f.tmp, "director.yaml")
	f.sock = filepath.Join(f.tmp, "d.sock")
	body := fmt.Sprintf("director:\n  state_dir: %s\n  resync_interval: 2s\nlisten:\n  metrics: 127.0.0.1:9722\n  control: %s\nvirtual_services:\n%s",
		filepath.Join(f.tmp, "state"), f.sock, fullNATServices)
	if err := os.WriteFile(f.cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	f.realServer(t, f.rs1, "10.1.0.11", "2001:db8:1::11")
	f.realServer(t, f.rs2, "10.1.0.12", "2001:db8:1::12")
	return f
}

// realServer starts lvs-node realserver with TOA on h (kind 254 from the
// director's local addresses only) and the application.
func (f *fullNATLab) realServer(t testing.TB, h *topo.Host, ip4, ip6 string) {
	t.Helper()
	cfg := filepath.Join(f.tmp, h.Name+".yaml")
	body := fmt.Sprintf(`realserver:
  state_dir: %s
  toa:
    enabled: true
    trusted_sources: [10.1.0.2/32, 10.1.0.3/32, "2001:db8:1::2/128", "2001:db8:1::3/128"]
    kinds: [254]
listen:
  control: %s
`, filepath.Join(f.tmp, h.Name+"-state"), filepath.Join(f.tmp, h.Name+".sock"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: registered before Start, the detach runs
	// once the real server has stopped (it keeps TOA attached across a
	// restart, and a repair pass of a running one would attach it again).
	t.Cleanup(func() { exec.Command("lvs-node", "toa", "detach").Run() })
	p := h.Start(t, "lvs-node", "realserver", "--config", cfg)
	if !p.WaitOutput("real server ready", 30*time.Second) {
		t.Fatalf("%s: realserver not ready:\n%s", h.Name, p.Output())
	}
	toaApp(t, h, ip4+":8080")
	toaApp(t, h, "["+ip6+"]:8080")
}

func (f *fullNATLab) start(t testing.TB) *topo.Proc {
	t.Helper()
	p := f.dir.Start(t, "lvs-node", "director", "--config", f.cfgPath)
	if !p.WaitOutput("msg=applied", 60*time.Second) {
		t.Fatalf("director did not apply:\n%s", p.Output())
	}
	return p
}

func (f *fullNATLab) metrics(t *testing.T) string {
	d := &directorLab{dir: f.dir}
	return d.metrics(t)
}

// verify checks a burst: each application saw its client's own address
// and port, through accept() and getpeername(), while the real server's
// kernel table shows a local address of the director; it returns, per
// local address and port, the client behind it.
func verify(t *testing.T, f *fullNATLab, conns []*clientConn) map[string]map[netip.AddrPort]netip.AddrPort {
	t.Helper()
	tables := map[string]map[uint64]kernelConn{"rs1": kernelConns(t, f.rs1), "rs2": kernelConns(t, f.rs2)}
	out := map[string]map[netip.AddrPort]netip.AddrPort{"rs1": {}, "rs2": {}}
	for _, c := range conns {
		r := c.Report
		if r.Accept != c.Local || r.Getpeername != c.Local {
			t.Fatalf("client %s: the application on %s saw accept() %s, getpeername() %s", c.Local, r.RS, r.Accept, r.Getpeername)
		}
		kc, ok := tables[r.RS][r.Inode]
		if !ok {
			t.Fatalf("client %s: socket inode %d not in %s's connection table", c.Local, r.Inode, r.RS)
		}
		if !isLocal(kc.Remote.Addr()) {
			t.Fatalf("client %s: %s's connection table shows the peer %s, want a local address of the director", c.Local, r.RS, kc.Remote)
		}
		// A local address and port is unique towards one real server
		// (the kernel's connection is the 4-tuple); towards two it may
		// repeat.
		if prev, dup := out[r.RS][kc.Remote]; dup {
			t.Fatalf("local address and port %s used towards %s by %s and %s at once", kc.Remote, r.RS, prev, c.Local)
		}
		out[r.RS][kc.Remote] = c.Local
	}
	if len(out["rs1"]) == 0 || len(out["rs2"]) == 0 {
		t.Fatalf("connections per real server: rs1 %d, rs2 %d", len(out["rs1"]), len(out["rs2"]))
	}
	return out
}

func isLocal(a netip.Addr) bool {
	for _, l := range fnLocal {
		if a == netip.MustParseAddr(l) {
			return true
		}
	}
	return false
}

// wire checks what the captures of both real servers saw of the
// connections (local address and port -> client) and returns the sum.
func wire(t *testing.T, name string, caps []*topo.Capture, clients map[string]map[netip.AddrPort]netip.AddrPort, complete bool) fullnattest.WireReport {
	t.Helper()
	var rep fullnattest.WireReport
	n := 0
	for i, rs := range []string{"rs1", "rs2"} { // caps in this order
		if err := caps[i].Stop(); err != nil {
			t.Fatal(err)
		}
		r, err := fullnattest.CheckWire(caps[i].Packets(), clients[rs], 254)
		t.Logf("%s wire on %s: %s", name, rs, r)
		if err != nil {
			t.Fatalf("%s wire on %s: %v", name, rs, err)
		}
		rep.Flows += r.Flows
		rep.WithTOA += r.WithTOA
		rep.Checked += r.Checked
		rep.NotReady += r.NotReady
		rep.Complete += r.Complete
		rep.FirstCarry += r.FirstCarry
		rep.NoRoom += r.NoRoom
		n += len(clients[rs])
	}
	if rep.Flows != n || rep.FirstCarry != n {
		t.Fatalf("%s: %d connections with %d handshake ACKs carrying the option, want %d", name, rep.Flows, rep.FirstCarry, n)
	}
	if complete && (rep.NotReady != 0 || rep.Complete == 0) || !complete && rep.NotReady == 0 {
		t.Fatalf("%s: checksums %s, want them complete=%t", name, rep, complete)
	}
	return rep
}

// diagnose logs what the director and the real servers saw of failed
// connections.
func (f *fullNATLab) diagnose(t *testing.T, failed []string, caps []*topo.Capture) {
	t.Helper()
	t.Logf("failed: %v", failed)
	conns := f.dir.MustRun(t, "ipvsadm", "-Lnc")
	for _, l := range strings.Split(conns, "\n") {
		for _, c := range failed {
			if strings.Contains(l, c) {
				t.Logf("ipvs: %s", l)
			}
		}
	}
	t.Logf("director conntrack stats:\n%s", f.dir.MustRun(t, "cat", "/proc/net/stat/nf_conntrack"))
	if out, err := f.dir.Run(t, "cat", "/proc/net/ip_vs_stats"); err == nil {
		t.Logf("ipvs stats:\n%s", out)
	}
	for _, c := range caps {
		c.Stop()
		syns, synacks := 0, 0
		for _, p := range c.Packets() {
			s, err := fullnattest.Parse(p.Data)
			if err != nil {
				continue
			}
			for _, fc := range failed {
				if s.Src.String() == fc || s.Dst.String() == fc {
					t.Logf("unNATed on a real server: %s", s)
				}
			}
			if s.Has(fullnattest.SYN) && !s.Has(fullnattest.ACK) {
				syns++
			}
			if s.Has(fullnattest.SYN | fullnattest.ACK) {
				synacks++
			}
		}
		t.Logf("a real server's capture: %d SYNs in, %d SYN-ACKs out, %d frames", syns, synacks, len(c.Packets()))
	}
	m := f.metrics(t)
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "lvs_node_fullnat") {
			t.Log(l)
		}
	}
}

func closeAll(conns []*clientConn) {
	for _, c := range conns {
		c.c.Close()
	}
}

// csumErrors is a host's count of TCP segments with a bad checksum (Tcp
// InCsumErrors, IPv6 included).
func csumErrors(t *testing.T, h *topo.Host) int {
	t.Helper()
	lines := strings.Split(h.MustRun(t, "cat", "/proc/net/snmp"), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "Tcp: ") || !strings.HasPrefix(lines[i+1], "Tcp: ") {
			continue
		}
		names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j := range names {
			if names[j] == "InCsumErrors" && j < len(vals) {
				var n int
				fmt.Sscan(vals[j], &n)
				return n
			}
		}
	}
	t.Fatalf("%s: no Tcp InCsumErrors in /proc/net/snmp", h.Name)
	return 0
}

func TestFullNAT(t *testing.T) {
	f := newFullNATLab(t)

	// check runs the kernel probe: this kernel must pass it.
	out := f.dir.MustRun(t, "lvs-node", "check", "--config", f.cfgPath)
	mustContain(t, "lvs-node check", out, "valid director configuration", "full-NAT supported by this kernel")
	t.Logf("check: %s", strings.TrimSpace(out))

	// The real servers cannot reach the client, directly or otherwise.
	for _, rs := range []*topo.Host{f.rs1, f.rs2} {
		if out, err := rs.Run(t, "ip", "route", "get", fnClients4[0]); err == nil {
			t.Fatalf("%s has a route to the client: %s", rs.Name, out)
		}
	}
	proc := f.start(t)
	// Segments up to the first data that the captures saw leave without
	// the option for lack of room in their header.
	noRoom := 0

	t.Run("200 connections from 50 ports, IPv4 and IPv6, offloads on", func(t *testing.T) {
		for _, fam := range []struct {
			name, vip string
			addrs     []string
			port      int
		}{{"IPv4", fnVIP4 + ":80", fnClients4, 41000}, {"IPv6", "[" + fnVIP6 + "]:80", fnClients6, 42000}} {
			caps := []*topo.Capture{f.rs1.Capture(t, "eth0"), f.rs2.Capture(t, "eth0")}
			conns := burst(t, f.client, fam.vip, fam.addrs, fam.port, 50, func(failed []string) { f.diagnose(t, failed, caps) })
			if len(conns) != 200 {
				t.Fatalf("%d connections", len(conns))
			}
			clients := verify(t, f, conns)
			time.Sleep(300 * time.Millisecond)
			noRoom += wire(t, fam.name, caps, clients, false).NoRoom
			closeAll(conns)
		}
	})

	t.Run("complete checksums the real servers verify", func(t *testing.T) {
		f.client.SetChecksumOffload(t, "eth0", false, true)
		before := map[*topo.Host]int{}
		for _, rs := range []*topo.Host{f.rs1, f.rs2} {
			rs.SetChecksumOffload(t, "eth0", true, false)
			before[rs] = csumErrors(t, rs)
		}
		for _, fam := range []struct {
			name, vip string
			addrs     []string
			port      int
		}{{"IPv4", fnVIP4 + ":80", fnClients4, 43000}, {"IPv6", "[" + fnVIP6 + "]:80", fnClients6, 44000}} {
			caps := []*topo.Capture{f.rs1.Capture(t, "eth0"), f.rs2.Capture(t, "eth0")}
			conns := burst(t, f.client, fam.vip, fam.addrs, fam.port, 10, func(failed []string) { f.diagnose(t, failed, caps) })
			clients := verify(t, f, conns)
			time.Sleep(300 * time.Millisecond)
			noRoom += wire(t, fam.name, caps, clients, true).NoRoom
			closeAll(conns)
		}
		for rs, n := range before {
			if got := csumErrors(t, rs); got != n {
				t.Fatalf("%s counted %d segments with a bad checksum", rs.Name, got-n)
			}
		}
		f.client.SetChecksumOffload(t, "eth0", true, true)
	})

	t.Run("counters", func(t *testing.T) {
		m := f.metrics(t)
		if n := metricValue(t, m, "lvs_node_fullnat_toa_inserted_total"); n < 2*(400+80) {
			t.Fatalf("inserted %v options for %d connections (handshake ACK and first data each)", n, 480)
		}
		// Every segment the captures saw go without the option for lack
		// of room was counted (one may also have left after a capture
		// stopped).
		if n := metricValue(t, m, `lvs_node_fullnat_toa_skipped_total{reason="no_room"}`); n < float64(noRoom) {
			t.Fatalf("skipped for lack of room: counted %v, the captures saw %d", n, noRoom)
		} else {
			t.Logf("skipped for lack of room: counted %v, the captures saw %d", n, noRoom)
		}
		for _, name := range []string{"lvs_node_fullnat_toa_no_conntrack_total", "lvs_node_fullnat_toa_errors_total",
			`lvs_node_fullnat_toa_skipped_total{reason="mtu"}`, `lvs_node_fullnat_toa_skipped_total{reason="gso"}`} {
			if v := metricValue(t, m, name); v != 0 {
				t.Fatalf("%s = %v", name, v)
			}
		}
		mustContain(t, "metrics", m, `lvs_node_scrape_collector_success{collector="fullnat"} 1`)
	})

	t.Run("restart under a stream", func(t *testing.T) {
		long, err := dialReport(f.client, "", fnVIP4+":80")
		if err != nil {
			t.Fatal(err)
		}
		defer long.c.Close()
		var done, failed atomic.Int64
		var stop atomic.Bool
		errs := make(chan error, 16)
		finished := make(chan struct{})
		vips := []string{fnVIP4 + ":80", "[" + fnVIP6 + "]:80"}
		go func() {
			defer close(finished)
			for i := 0; !stop.Load() && i < 20000; i++ {
				c, err := dialReport(f.client, "", vips[i%2])
				if err == nil {
					if c.Report.Getpeername != c.Local {
						err = fmt.Errorf("the application saw %s for the client %s", c.Report.Getpeername, c.Local)
					} else {
						err = c.roundTrip("ping")
					}
					c.c.Close()
				}
				if err != nil {
					failed.Add(1)
					select {
					case errs <- err:
					default:
					}
				}
				done.Add(1)
			}
		}()
		waitDone := func(n int64) {
			deadline := time.Now().Add(60 * time.Second)
			for done.Load() < n && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		}
		waitDone(20)
		for i := range 2 {
			before := done.Load()
			if err := proc.Stop(10 * time.Second); !proc.Exited() {
				t.Fatalf("director did not stop: %v", err)
			}
			if err := long.roundTrip(fmt.Sprintf("while stopped %d", i)); err != nil {
				t.Fatalf("the long connection, director stopped: %v", err)
			}
			proc = f.start(t)
			mustContain(t, "restart log", proc.Output(), "changes=0")
			if strings.Contains(proc.Output(), "full-NAT") {
				t.Fatalf("the restart changed full-NAT:\n%s", proc.Output())
			}
			waitDone(before + 20)
		}
		stop.Store(true)
		<-finished
		if err := long.roundTrip("after the restarts"); err != nil {
			t.Fatalf("the long connection after the restarts: %v", err)
		}
		if n := failed.Load(); n != 0 {
			t.Fatalf("%d of %d requests failed across restarts; first: %v", n, done.Load(), <-errs)
		}
		t.Logf("%d requests, none failed, across 2 restarts; a connection opened before them still works", done.Load())
	})

	t.Run("down removes what full-NAT added", func(t *testing.T) {
		if err := proc.Stop(10 * time.Second); !proc.Exited() {
			t.Fatalf("director did not stop: %v", err)
		}
		out := f.dir.MustRun(t, "lvs-node", "director", "down", "--config", f.cfgPath)
		t.Logf("down:\n%s", out)
		if got := f.dir.MustRun(t, "ipvsadm", "-Sn"); strings.TrimSpace(got) != "" {
			t.Fatalf("IPVS after down:\n%s", got)
		}
		if v := f.dir.ReadSysctl(t, "net/ipv4/vs/conntrack"); v != "0" {
			t.Fatalf("net.ipv4.vs.conntrack = %s after down, want the original 0", v)
		}
		err := f.dir.Do(func() error {
			c, err := nftables.New()
			if err != nil {
				return err
			}
			ts, err := c.ListTables()
			if err != nil {
				return err
			}
			for _, tb := range ts {
				if strings.HasPrefix(tb.Name, "lvs_node") {
					return fmt.Errorf("nftables table %s left", tb.Name)
				}
			}
			l, err := netlink.LinkByName("eth1")
			if err != nil {
				return err
			}
			qs, err := netlink.QdiscList(l)
			if err != nil {
				return err
			}
			for _, q := range qs {
				if q.Type() == "clsact" {
					return errors.New("clsact qdisc left on eth1")
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat("/sys/fs/bpf/lvs-node/fullnat"); !os.IsNotExist(err) {
			t.Fatalf("pins left: %v", err)
		}
	})
}
