package toa_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
	"github.com/lvs-node/lvs-node/toa"
	"github.com/lvs-node/lvs-node/toa/format"
	"github.com/lvs-node/lvs-node/toa/internal/rsprog"
	"github.com/lvs-node/lvs-node/toa/toatest"
)

// TestSlots: an accepted socket's address is in the slot its cookie
// picks while the socket is open and the slot is free once it is closed;
// when every slot is held by another socket, connections keep their
// address in socket storage, counted as slot_taken, and never read
// another socket's slot.
func TestSlots(t *testing.T) {
	kerneltest.NeedRoot(t)
	env := toatest.Env{PinDir: toatest.PinDir(t)}
	opts := toa.Options{PinDir: env.PinDir}
	lab, err := toa.NewLab(toa.LabOptions{Addrs: []netip.Addr{bal, srv}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	defer toa.Detach(opts)
	opt, _ := format.Encode(format.K254, client)
	if err := lab.Inject(toa.InACK, opt); err != nil {
		t.Fatal(err)
	}
	// A configured size, the smallest: filling every slot stays quick.
	const n = toa.MinSlots
	if _, err := toa.Attach(toa.Config{Cgroup: lab.Server, Trusted: trust, Slots: n}, opts); err != nil {
		t.Fatal(err)
	}
	slots, err := ebpf.LoadPinnedMap(filepath.Join(env.PinDir, rsprog.MapSlots), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slots.Close()
	if int(slots.MaxEntries()) != n {
		t.Fatalf("%d slots, want %d", slots.MaxEntries(), n)
	}
	inUse := func() int {
		t.Helper()
		u, err := toa.ReadSlots(opts)
		if err != nil {
			t.Fatal(err)
		}
		if u.Total != n {
			t.Fatalf("ReadSlots total %d, want %d", u.Total, n)
		}
		return u.InUse
	}
	slotTaken := func() uint64 {
		t.Helper()
		st, err := toa.ReadCounters(opts)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := st.Get("slot_taken")
		return n
	}

	// One connection: its slot while it is open, free after.
	conn := toa.Conn{Listen: toa.ListenIPv4, Server: srv, Balancer: bal}
	conn.WhileOpen = func(fd int) error {
		ck, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
		if err != nil {
			return err
		}
		var e rsprog.Slot
		if err := slots.Lookup(uint32(ck)&uint32(n-1), &e); err != nil {
			return err
		}
		got := netip.AddrPortFrom(netip.AddrFrom4([4]byte(e.A.Addr[:4])), binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, e.A.Port)))
		if e.Cookie != ck || got != client {
			t.Errorf("slot of cookie %d holds cookie %d, address %s; want the socket's, %s", ck, e.Cookie, got, client)
		}
		if n := inUse(); n != 1 {
			t.Errorf("%d slots in use with one connection open", n)
		}
		return nil
	}
	s, err := lab.Connect(conn)
	if err != nil {
		t.Fatal(err)
	}
	if s.Accept != client || s.Peer != client {
		t.Fatalf("accept %s, getpeername %s; want %s", s.Accept, s.Peer, client)
	}
	if n := inUse(); n != 0 {
		t.Fatalf("%d slots in use after the connection closed", n)
	}

	// Many: every one revealed, every slot given back.
	conn.WhileOpen = nil
	if _, _, rev, err := lab.Churn(conn, 500, client); err != nil || rev != 500 {
		t.Fatalf("churn: %d of 500 revealed, %v", rev, err)
	}
	if n := inUse(); n != 0 {
		t.Fatalf("%d slots in use after 500 connections closed", n)
	}
	if n := slotTaken(); n != 0 {
		t.Fatalf("slot_taken %d with the slots free", n)
	}
	if v := slotMetric(t, opts); v != n {
		t.Fatalf("lvs_node_toa_slots %v, want %d", v, n)
	}

	// Every slot held by another socket, with another address: socket
	// storage takes over, and no connection sees the slots' address.
	other := rsprog.Slot{Cookie: 1 << 63}
	other.A.Family, other.A.HasPort = 4, 1
	copy(other.A.Addr[:], []byte{198, 51, 100, 99})
	fill(t, slots, other)
	s, err = lab.Connect(toa.Conn{Listen: toa.ListenIPv4, Server: srv, Balancer: bal})
	if err != nil {
		t.Fatal(err)
	}
	if s.Accept != client || s.Peer != client {
		t.Fatalf("with every slot taken: accept %s, getpeername %s; want %s", s.Accept, s.Peer, client)
	}
	if _, _, rev, err := lab.Churn(conn, 100, client); err != nil || rev != 100 {
		t.Fatalf("churn with every slot taken: %d of 100 revealed, %v", rev, err)
	}
	if got := slotTaken(); got != 101 {
		t.Fatalf("slot_taken %d after 101 connections found their slot taken", got)
	}
	if got := inUse(); got != n {
		t.Fatalf("%d slots in use, want all %d still held", got, n)
	}

	// Another size replaces the array (an empty one), and connections
	// use slots again.
	ch, err := toa.Attach(toa.Config{Cgroup: lab.Server, Trusted: trust, Slots: 2 * n}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := toa.ReadSlots(opts); err != nil || u.Total != 2*n || u.InUse != 0 {
		t.Fatalf("after attach with %d slots (%v): %+v, %v", 2*n, ch, u, err)
	}
	if v := slotMetric(t, opts); v != 2*n {
		t.Fatalf("lvs_node_toa_slots %v after the resize, want %d", v, 2*n)
	}
	if _, _, rev, err := lab.Churn(conn, 100, client); err != nil || rev != 100 {
		t.Fatalf("churn with the new slots: %d of 100 revealed, %v", rev, err)
	}
	if got := slotTaken(); got != 101 {
		t.Fatalf("slot_taken %d after the resize, want still 101", got)
	}
}

// slotMetric returns the value of lvs_node_toa_slots, -1 when missing.
func slotMetric(t *testing.T, opts toa.Options) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(toa.NewCollector(opts))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "lvs_node_toa_slots" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// fill writes e into every slot.
func fill(t testing.TB, m *ebpf.Map, e rsprog.Slot) {
	t.Helper()
	keys := make([]uint32, m.MaxEntries())
	vals := make([]rsprog.Slot, len(keys))
	for i := range keys {
		keys[i], vals[i] = uint32(i), e
	}
	n, err := m.BatchUpdate(keys, vals, nil)
	if err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
		t.Fatal(err)
	}
	for i := n; i < len(keys); i++ {
		if err := m.Update(keys[i], vals[i], ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
}
