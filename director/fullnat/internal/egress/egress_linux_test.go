package egress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/vishvananda/netlink"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
	"github.com/lvs-node/lvs-node/toa/format"
)

var (
	laddr4 = netip.MustParseAddr("10.1.0.2")
	rs4    = netip.MustParseAddr("10.1.0.11")
	laddr6 = netip.MustParseAddr("2001:db8:1::2")
	rs6    = netip.MustParseAddr("2001:db8:1::11")
	client = netip.MustParseAddrPort("198.51.100.10:51000")
	cl6    = netip.MustParseAddrPort("[2001:db8:c::10]:51001")
	// tsOpts are the options of a Linux ACK: NOP, NOP, timestamps.
	tsOpts = []byte{1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78}
)

// rig is the program loaded with empty maps.
type rig struct {
	t    *testing.T
	objs egressObjects
}

func load(t *testing.T) *rig {
	t.Helper()
	kerneltest.NeedRoot(t)
	r := &rig{t: t}
	if err := loadEgressObjects(&r.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("load: %+v", ve)
		}
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { r.objs.Close() })
	return r
}

func (r *rig) laddr(a netip.Addr, f format.ID) {
	r.t.Helper()
	k := LaddrKey{Family: 4}
	if a.Is6() {
		k.Family = 6
	}
	copy(k.Addr[:], a.AsSlice())
	if err := r.objs.FullnatLaddrs.Put(k, LaddrConf{Format: uint32(f)}); err != nil {
		r.t.Fatal(err)
	}
}

func key(s seg) ConnKey {
	k := ConnKey{Family: 4}
	if s.src.Is6() {
		k.Family = 6
	}
	copy(k.Laddr[:], s.src.AsSlice())
	copy(k.Raddr[:], s.dst.AsSlice())
	k.Lport = htons(s.sport)
	k.Rport = htons(s.dport)
	return k
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// conn records the connection of s as its SYN would have: first
// sequence number next, client c, format f.
func (r *rig) conn(s seg, next uint32, c netip.AddrPort, f format.ID) {
	r.t.Helper()
	st := ConnState{NextSeq: next, Format: uint32(f)}
	st.Client.Family = 4
	if c.Addr().Is6() {
		st.Client.Family = 6
	}
	st.Client.Format = uint8(f)
	st.Client.HasPort = 1
	st.Client.Port = htons(c.Port())
	copy(st.Client.Addr[:], c.Addr().AsSlice())
	if err := r.objs.FullnatConns.Put(key(s), st); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) hasConn(s seg) bool {
	var st ConnState
	return r.objs.FullnatConns.Lookup(key(s), &st) == nil
}

func (r *rig) counters() [CounterSlots]uint64 {
	r.t.Helper()
	var out [CounterSlots]uint64
	for i := range out {
		var per []uint64
		if err := r.objs.FullnatStats.Lookup(uint32(i), &per); err != nil {
			r.t.Fatal(err)
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out
}

// run passes frame through the program and returns its verdict and the
// frame as it leaves.
func (r *rig) run(frame []byte, ctx []byte) (int32, []byte) {
	r.t.Helper()
	opts := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
	if ctx != nil {
		opts.Context = ctx
	}
	ret, err := r.objs.FullnatToa.Run(opts)
	if err != nil {
		r.t.Fatalf("run: %v", err)
	}
	return int32(ret), opts.DataOut
}

const (
	actUnspec = -1
	actShot   = 2
)

// toa4 and toa6 spell the options of the format table (toa.md): kind,
// length, port, address.
func toa4(kind byte, c netip.AddrPort) []byte {
	a := c.Addr().As4()
	return []byte{kind, 8, byte(c.Port() >> 8), byte(c.Port()), a[0], a[1], a[2], a[3]}
}

func toa6(kind byte, c netip.AddrPort) []byte {
	a := c.Addr().As16()
	return append([]byte{kind, 20, byte(c.Port() >> 8), byte(c.Port())}, a[:]...)
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestInsert(t *testing.T) {
	r := load(t)
	r.laddr(laddr4, format.K254)
	r.laddr(laddr6, format.K254b)
	ack4 := seg{src: laddr4, dst: rs4, sport: 40000, dport: 8080, seq: 1001, ack: 7001, flags: fACK, opts: tsOpts}
	ack6 := seg{src: laddr6, dst: rs6, sport: 40001, dport: 8080, seq: 5001, ack: 9, flags: fACK, opts: tsOpts}
	cases := []struct {
		name string
		in   seg
		cl   netip.AddrPort
		f    format.ID
		opt  []byte
	}{
		{"IPv4 handshake ACK", ack4, client, format.K254, toa4(254, client)},
		{"IPv4 ACK without options", seg{src: laddr4, dst: rs4, sport: 40002, dport: 80, seq: 77, flags: fACK}, client, format.K254, toa4(254, client)},
		{"IPv4 first data", seg{src: laddr4, dst: rs4, sport: 40003, dport: 80, seq: 1001, flags: fACK | fPSH, opts: tsOpts, payload: payload(1000)}, client, format.K254, toa4(254, client)},
		{"IPv4 first data, odd length", seg{src: laddr4, dst: rs4, sport: 40004, dport: 80, seq: 1001, flags: fACK | fPSH, opts: tsOpts, payload: payload(1399)}, client, format.K254, toa4(254, client)},
		{"IPv4 short data", seg{src: laddr4, dst: rs4, sport: 40005, dport: 80, seq: 1001, flags: fACK | fPSH, payload: []byte("GET / HTTP/1.0\r\n\r\n")}, client, format.K254, toa4(254, client)},
		{"IPv6 handshake ACK", ack6, cl6, format.K254b, toa6(254, cl6)},
		{"IPv6 first data", seg{src: laddr6, dst: rs6, sport: 40006, dport: 443, seq: 5001, flags: fACK | fPSH, opts: tsOpts, payload: payload(1200)}, cl6, format.K254b, toa6(254, cl6)},
		{"IPv6 kind 253", seg{src: laddr6, dst: rs6, sport: 40007, dport: 443, seq: 5001, flags: fACK, opts: tsOpts}, cl6, format.K253, toa6(253, cl6)},
		{"IPv4 kind 200", seg{src: laddr4, dst: rs4, sport: 40008, dport: 443, seq: 5001, flags: fACK, opts: tsOpts}, client, format.K200, toa4(200, client)},
		{"IPv4 kind 28, padded", seg{src: laddr4, dst: rs4, sport: 40009, dport: 443, seq: 5001, flags: fACK}, client, format.K28,
			[]byte{28, 7, 1, 198, 51, 100, 10, 1}},
		{"IPv6 kind 28, padded", seg{src: laddr6, dst: rs6, sport: 40010, dport: 443, seq: 5001, flags: fACK, opts: tsOpts}, cl6, format.K28b,
			append(append([]byte{28, 19, 1}, cl6.Addr().AsSlice()...), 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r.rig(t)
			r.conn(c.in, c.in.seq, c.cl, c.f)
			before := r.counters()
			ret, out := r.run(c.in.frame(), nil)
			if ret != actUnspec {
				t.Fatalf("verdict %d, want TC_ACT_UNSPEC", ret)
			}
			want := c.in
			want.opts = append(append([]byte{}, c.opt...), c.in.opts...)
			if !bytes.Equal(out, want.frame()) {
				t.Fatalf("frame out:\n% x\nwant:\n% x", out, want.frame())
			}
			if err := checkFrame(out); err != nil {
				t.Fatal(err)
			}
			if d := r.counters()[CounterInserted] - before[CounterInserted]; d != 1 {
				t.Fatalf("inserted counted %d times", d)
			}
			if !r.hasConn(c.in) {
				t.Fatal("the connection was forgotten before it moved past its first data")
			}
			// A retransmission carries it too; the next segment does not
			// and ends the connection's entry.
			if _, out := r.run(c.in.frame(), nil); !bytes.Equal(out, want.frame()) {
				t.Fatal("the retransmission did not carry the option")
			}
			next := c.in
			next.seq += uint32(max(1, len(c.in.payload)))
			if _, out := r.run(next.frame(), nil); !bytes.Equal(out, next.frame()) {
				t.Fatal("a later segment was changed")
			}
			if r.hasConn(c.in) {
				t.Fatal("the connection's entry outlived its first data")
			}
		})
	}
}

// rig switches the test of r (for subtests).
func (r *rig) rig(t *testing.T) { r.t = t }

func TestLeftAlone(t *testing.T) {
	r := load(t)
	r.laddr(laddr4, format.K254)
	counts := func() [CounterSlots]uint64 { return r.counters() }
	base := seg{src: laddr4, dst: rs4, sport: 41000, dport: 80, seq: 1001, flags: fACK, opts: tsOpts}

	t.Run("not a local address", func(t *testing.T) {
		r.rig(t)
		s := base
		s.src = netip.MustParseAddr("10.1.0.99")
		r.conn(s, s.seq, client, format.K254)
		before := counts()
		if _, out := r.run(s.frame(), nil); !bytes.Equal(out, s.frame()) {
			t.Fatal("changed")
		}
		if counts() != before {
			t.Fatal("counted")
		}
	})
	t.Run("unknown connection", func(t *testing.T) {
		r.rig(t)
		s := base
		s.sport = 41001
		if _, out := r.run(s.frame(), nil); !bytes.Equal(out, s.frame()) {
			t.Fatal("changed")
		}
	})
	t.Run("no room", func(t *testing.T) {
		r.rig(t)
		s := base
		s.sport = 41002
		s.opts = bytes.Repeat([]byte{1}, 36) // 56-byte header: 8 more do not fit
		r.conn(s, s.seq, client, format.K254)
		before := counts()
		if _, out := r.run(s.frame(), nil); !bytes.Equal(out, s.frame()) {
			t.Fatal("changed")
		}
		if d := counts()[CounterNoRoom] - before[CounterNoRoom]; d != 1 {
			t.Fatalf("no_room counted %d times", d)
		}
		s.opts = bytes.Repeat([]byte{1}, 32) // 52 + 8 = 60: fits exactly
		r.conn(s, s.seq, client, format.K254)
		if _, out := r.run(s.frame(), nil); len(out) != len(s.frame())+8 || checkFrame(out) != nil {
			t.Fatal("a header that fits exactly was not extended")
		}
	})
	t.Run("reset", func(t *testing.T) {
		r.rig(t)
		s := base
		s.sport = 41003
		s.flags = fRST | fACK
		r.conn(s, s.seq, client, format.K254)
		if _, out := r.run(s.frame(), nil); !bytes.Equal(out, s.frame()) {
			t.Fatal("changed")
		}
		if r.hasConn(s) {
			t.Fatal("entry kept after a reset")
		}
	})
	t.Run("fin", func(t *testing.T) {
		r.rig(t)
		s := base
		s.sport = 41004
		s.flags = fFIN | fACK
		r.conn(s, s.seq, client, format.K254)
		if _, out := r.run(s.frame(), nil); len(out) != len(s.frame())+8 {
			t.Fatal("a FIN at the first sequence number went without the option")
		}
		if r.hasConn(s) {
			t.Fatal("entry kept after a FIN")
		}
	})
	t.Run("syn without conntrack", func(t *testing.T) {
		r.rig(t)
		s := base
		s.sport = 41005
		s.flags = fSYN
		s.seq = 1000
		before := counts()
		if _, out := r.run(s.frame(), nil); !bytes.Equal(out, s.frame()) {
			t.Fatal("changed")
		}
		if d := counts()[CounterNoConntrack] - before[CounterNoConntrack]; d != 1 {
			t.Fatalf("no_conntrack counted %d times", d)
		}
		if r.hasConn(s) {
			t.Fatal("a SYN without conntrack entry was remembered")
		}
	})
	t.Run("trailing bytes", func(t *testing.T) {
		r.rig(t)
		s := base
		s.sport = 41006
		r.conn(s, s.seq, client, format.K254)
		f := append(s.frame(), 0, 0, 0, 0, 0, 0)
		before := counts()
		if _, out := r.run(f, nil); !bytes.Equal(out, f) {
			t.Fatal("changed")
		}
		if d := counts()[CounterError] - before[CounterError]; d != 1 {
			t.Fatalf("error counted %d times", d)
		}
	})
	t.Run("fragment", func(t *testing.T) {
		r.rig(t)
		s := base
		s.sport = 41007
		r.conn(s, s.seq, client, format.K254)
		f := s.frame()
		f[14+6] |= 0x20 // more fragments
		if _, out := r.run(f, nil); !bytes.Equal(out, f) {
			t.Fatal("changed")
		}
	})
	t.Run("gso", func(t *testing.T) {
		r.rig(t)
		s := base
		s.sport = 41008
		s.payload = payload(2000)
		r.conn(s, s.seq, client, format.K254)
		ctx := skbContext(t, map[string]uint32{"gso_size": 1000, "gso_segs": 2})
		before := counts()
		if _, out := r.run(s.frame(), ctx); !bytes.Equal(out, s.frame()) {
			t.Fatal("changed")
		}
		if d := counts()[CounterGSO] - before[CounterGSO]; d != 1 {
			t.Fatalf("gso counted %d times", d)
		}
	})
}

// skbContext is a struct __sk_buff for BPF_PROG_TEST_RUN with the given
// fields set, laid out as the running kernel's BTF says.
func skbContext(t *testing.T, fields map[string]uint32) []byte {
	t.Helper()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	var s *btf.Struct
	if err := spec.TypeByName("__sk_buff", &s); err != nil {
		t.Fatal(err)
	}
	ctx := make([]byte, s.Size)
	for name, v := range fields {
		found := false
		for _, m := range s.Members {
			if m.Name == name {
				binary.NativeEndian.PutUint32(ctx[m.Offset.Bytes():], v)
				found = true
			}
		}
		if !found {
			t.Fatalf("__sk_buff has no %s", name)
		}
	}
	return ctx
}

// TestPathMTU runs the program in a namespace of its own, where the
// device (lo, on which test runs happen) and a route have small MTUs.
func TestPathMTU(t *testing.T) {
	kerneltest.FreshNetns(t)
	r := load(t)
	r.laddr(laddr4, format.K254)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetMTU(lo, 1200); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	data := func(sport uint16, l3len int, dst netip.Addr) seg {
		return seg{src: laddr4, dst: dst, sport: sport, dport: 80, seq: 1001, flags: fACK | fPSH, opts: tsOpts, payload: payload(l3len - 20 - 32)}
	}
	var ctx []byte // the device the packet leaves by; nil: lo
	try := func(s seg) bool {
		t.Helper()
		r.conn(s, s.seq, client, format.K254)
		_, out := r.run(s.frame(), ctx)
		return len(out) != len(s.frame())
	}
	before := r.counters()
	if try(data(42000, 1196, rs4)) {
		t.Fatal("grew a packet past the device MTU")
	}
	if !try(data(42001, 1192, rs4)) {
		t.Fatal("a packet that fits the device MTU exactly was left alone")
	}
	// A route with a smaller (locked) MTU towards other real servers,
	// as the kernel's forwarding honours it.
	d := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lvsmtu0"}, PeerName: "lvsmtu1"}
	if err := netlink.LinkAdd(d); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(d); err != nil {
		t.Fatal(err)
	}
	_, dst, _ := net.ParseCIDR("10.2.0.0/24")
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: d.Attrs().Index, Dst: dst, MTU: 1000, MTULock: true}); err != nil {
		t.Fatal(err)
	}
	// The route is looked up as for forwarding, which the director
	// turns on for NAT.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx = skbContext(t, map[string]uint32{"ifindex": uint32(d.Attrs().Index)})
	far := netip.MustParseAddr("10.2.0.11")
	if try(data(42002, 996, far)) {
		t.Fatal("grew a packet past the route's MTU")
	}
	if !try(data(42003, 992, far)) {
		t.Fatal("a packet that fits the route's MTU exactly was left alone")
	}
	if d := r.counters()[CounterMTU] - before[CounterMTU]; d != 2 {
		t.Fatalf("mtu counted %d times, want 2", d)
	}
}
