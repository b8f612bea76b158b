package nftmark

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/kerneltest"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// bystander creates a table lvs-node does not own.
func bystander(t *testing.T) *nftables.Table {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tab := c.AddTable(&nftables.Table{Name: "bystander", Family: nftables.TableFamilyINet})
	c.AddChain(&nftables.Chain{Name: "in", Table: tab, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	return tab
}

func tableNames(t *testing.T) map[string]bool {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, tab := range ts {
		m[tab.Name] = true
	}
	return m
}

func TestMarkerLifecycle(t *testing.T) {
	kerneltest.FreshNetns(t)
	bystander(t)
	m, err := Open("lvs-node")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })

	if rs, err := m.Rules(); err != nil || len(rs) != 0 {
		t.Fatalf("rules of a missing table: %v, %v", rs, err)
	}
	first := []Rule{
		{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{443, 80}, Mark: 10, Mask: 0xff},
		{VIP: vip6, Protocol: ipvs.UDP, Mark: 11, Mask: 0xff},
		{VIP: vip4, Protocol: ipvs.SCTP, Ports: []uint16{0}, Mark: 12, Mask: 0xff},
	}
	want, err := Normalize(first)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the same state twice
		if err := m.Set(first); err != nil {
			t.Fatal(err)
		}
		got, err := m.Rules()
		if err != nil {
			t.Fatal(err)
		}
		if show(got) != show(want) {
			t.Fatalf("read back:\n%swant:\n%s", show(got), show(want))
		}
	}

	// The same rules again write nothing: the table keeps its handle.
	before := tableHandle(t, "lvs-node")
	if err := m.Set(first); err != nil {
		t.Fatal(err)
	}
	if after := tableHandle(t, "lvs-node"); after != before {
		t.Fatalf("an unchanged Set rewrote the table: handle %s, then %s", before, after)
	}
	// A rule deleted by hand is put back by the next Set.
	deleteFirstRule(t, "lvs-node")
	if err := m.Set(first); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Rules(); err != nil || show(got) != show(want) {
		t.Fatalf("after repairing a deleted rule:\n%s%v", show(got), err)
	}

	second := []Rule{{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{8443}, Mark: 20, Mask: 0xff}}
	if err := m.Set(second); err != nil {
		t.Fatal(err)
	}
	got, err := m.Rules()
	if err != nil {
		t.Fatal(err)
	}
	if show(got) != "tcp 10.0.0.100 ports 8443 mark 0x14/0xff\n" {
		t.Fatalf("after replacement:\n%s", show(got))
	}

	// A bad rule set changes nothing.
	if err := m.Set([]Rule{{VIP: vip4, Protocol: ipvs.TCP, Mark: 0, Mask: 0xff}}); err == nil {
		t.Fatal("mark 0 accepted")
	}
	if got, _ := m.Rules(); show(got) != "tcp 10.0.0.100 ports 8443 mark 0x14/0xff\n" {
		t.Fatalf("after a rejected set:\n%s", show(got))
	}

	if !tableNames(t)["bystander"] {
		t.Fatal("Set removed a table it does not own")
	}
	for range 2 {
		if err := m.Delete(); err != nil {
			t.Fatal(err)
		}
	}
	names := tableNames(t)
	if names["lvs-node"] || !names["bystander"] {
		t.Fatalf("tables after delete: %v", names)
	}
	if rs, err := m.Rules(); err != nil || len(rs) != 0 {
		t.Fatalf("rules after delete: %v, %v", rs, err)
	}
}

// TestPacketGetsMark sends a datagram to the VIP from inside the namespace
// and counts, in a chain that runs after ours, the packets that carry the
// mark. Another table sets bits of the mark before ours runs, inside and
// outside lvs-node's mask: those outside survive, those inside are
// replaced by the service's mark.
func TestPacketGetsMark(t *testing.T) {
	kerneltest.FreshNetns(t)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	vip := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("10.0.0.100"), Mask: net.CIDRMask(32, 32)}}
	if err := netlink.AddrAdd(lo, vip); err != nil {
		t.Fatal(err)
	}

	const (
		mask  = 0x30ff
		mark  = 0x1034     // lvs-node's
		other = 0x000100ff // set before ours: 0x10000 is someone else's bit, 0xff in our mask
		want  = 0x00011034 // other's bit kept, ours replaced
	)
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	pre := c.AddTable(&nftables.Table{Name: "someone-else", Family: nftables.TableFamilyINet})
	prech := c.AddChain(&nftables.Chain{Name: "out", Table: pre, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityRef(*nftables.ChainPriorityMangle - 10)})
	c.AddRule(&nftables.Rule{Table: pre, Chain: prech, Exprs: []expr.Any{
		&expr.Immediate{Register: 1, Data: binary.NativeEndian.AppendUint32(nil, other)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}})
	tab := c.AddTable(&nftables.Table{Name: "observer", Family: nftables.TableFamilyINet})
	ch := c.AddChain(&nftables.Chain{Name: "out", Table: tab, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter})
	c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, want)},
		&expr.Counter{},
	}})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	marked := func() uint64 {
		t.Helper()
		rs, err := c.GetRules(tab, ch)
		if err != nil || len(rs) != 1 {
			t.Fatalf("observer rules: %v %v", rs, err)
		}
		for _, e := range rs[0].Exprs {
			if ctr, ok := e.(*expr.Counter); ok {
				return ctr.Packets
			}
		}
		t.Fatal("observer rule has no counter")
		return 0
	}
	send := func(port int) {
		t.Helper()
		conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP("10.0.0.100"), Port: port})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
	}

	m, err := Open("lvs-node")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Set([]Rule{{VIP: vip4, Protocol: ipvs.UDP, Ports: []uint16{5353}, Mark: mark, Mask: mask}}); err != nil {
		t.Fatal(err)
	}
	// nft(8) reads the rule as the masked set it is meant to be. (The
	// kernel holds (mark & 0xffffcf00) ^ 0x1034, as nft itself writes
	// "meta mark & 0xffffcf00 | 0x1034"; nft lists the same operation
	// with the mark's bits in the and-mask as well.)
	out, err := exec.Command("nft", "list", "chain", "inet", "lvs-node", "prerouting").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "udp dport 5353 meta mark set meta mark & 0xffffdf34 | 0x00001034 counter") {
		t.Errorf("nft list chain (%v):\n%s", err, out)
	}
	send(5354) // another port: not marked
	if n := marked(); n != 0 {
		t.Fatalf("%d packets to an unmarked port carried the mark", n)
	}
	send(5353)
	if n := marked(); n != 1 {
		t.Fatalf("%d marked packets after one datagram to the marked port, want 1", n)
	}
	if err := m.Delete(); err != nil {
		t.Fatal(err)
	}
	send(5353)
	if n := marked(); n != 1 {
		t.Fatalf("marking went on after Delete: %d marked packets", n)
	}
}

// tableHandle is the handle nft(8) shows for the inet table: the kernel
// numbers each new table afresh, so a rewrite (delete and add) changes it.
func tableHandle(t *testing.T, table string) string {
	t.Helper()
	out, err := exec.Command("nft", "-a", "list", "table", "inet", table).CombinedOutput()
	if err != nil {
		t.Fatalf("nft -a list table inet %s: %v: %s", table, err, out)
	}
	m := regexp.MustCompile(`table inet \S+ \{ # handle (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no table handle in:\n%s", out)
	}
	return string(m[1])
}

// deleteFirstRule deletes one rule of the table, as an operator might.
func deleteFirstRule(t *testing.T, table string) {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tb := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chains {
		if ch.Table.Name != table {
			continue
		}
		rs, err := c.GetRules(tb, ch)
		if err != nil || len(rs) == 0 {
			t.Fatalf("rules of %s: %d, %v", ch.Name, len(rs), err)
		}
		if err := c.DelRule(rs[0]); err != nil {
			t.Fatal(err)
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("table %s has no chains", table)
}

// TestMarkerCallsAreBounded: a call that gets no answer in time fails
// with a deadline error instead of waiting, and the next call works on a
// fresh socket (the old one may still hold the late answer).
func TestMarkerCallsAreBounded(t *testing.T) {
	kerneltest.FreshNetns(t)
	m, err := Open("lvs-node")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	rules := []Rule{{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{80}, Mark: 10, Mask: 0xff}}
	m.timeout = time.Nanosecond // the deadline passes before any answer
	start := time.Now()
	if err := m.Set(rules); !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "nftables did not answer within 1ns") {
		t.Fatalf("Set with no time to answer: %v", err)
	}
	if _, err := m.Rules(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Rules with no time to answer: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("bounded calls took %v", d)
	}
	m.timeout = DefaultTimeout
	if err := m.Set(rules); err != nil {
		t.Fatalf("Set after a timeout: %v", err)
	}
	if got, err := m.Rules(); err != nil || len(got) != 1 || got[0].Mark != 10 {
		t.Fatalf("rules after a timeout: %v, %v", got, err)
	}
}
