package parsertc

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
	"github.com/lvs-node/lvs-node/toa/format"
)

func load(t testing.TB) *Parser {
	t.Helper()
	kerneltest.NeedRoot(t)
	p, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func enc(t testing.TB, id format.ID, ap string) []byte {
	t.Helper()
	b, err := format.Encode(id, netip.MustParseAddrPort(ap))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// compare runs the C parser over opts and checks it against the Go
// reference.
func compare(t testing.TB, p *Parser, opts []byte, syn, v6 bool, enabled format.Set) format.Result {
	t.Helper()
	hdr, err := format.WithHeader(opts, syn)
	if err != nil {
		t.Fatal(err)
	}
	return compareHeader(t, p, hdr, v6, enabled)
}

func compareHeader(t testing.TB, p *Parser, hdr []byte, v6 bool, enabled format.Set) format.Result {
	t.Helper()
	got, _, ran, err := p.Parse(Frame(hdr, v6), enabled)
	if err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatalf("the tc program did not reach the parser for % x", hdr)
	}
	want := format.ParseHeader(hdr, enabled)
	if got != want {
		t.Fatalf("header % x (formats %s):\n C  %+v (%s)\n Go %+v (%s)", hdr, enabled, got, got.Flags, want, want.Flags)
	}
	return got
}

func TestParserMatchesReference(t *testing.T) {
	p := load(t)
	all := format.AllFormats
	v4 := enc(t, format.K254, "203.0.113.7:40001")
	v6 := enc(t, format.K254b, "[2001:db8:c::7]:40002")
	tests := []struct {
		name    string
		opts    []byte
		syn     bool
		enabled format.Set
		want    format.Flags
		addr    string // with port, or bare for no-port formats
	}{
		{name: "254/8", opts: v4, want: format.Found, addr: "203.0.113.7:40001"},
		{name: "254/20", opts: v6, want: format.Found, addr: "[2001:db8:c::7]:40002"},
		{name: "253/20", opts: enc(t, format.K253, "[2001:db8:c::8]:1"), want: format.Found, addr: "[2001:db8:c::8]:1"},
		{name: "200/8", opts: enc(t, format.K200, "198.51.100.9:65535"), want: format.Found, addr: "198.51.100.9:65535"},
		{name: "28/7", opts: enc(t, format.K28, "198.51.100.10:0"), syn: true, want: format.Found, addr: "198.51.100.10"},
		{name: "28/19", opts: enc(t, format.K28b, "[2001:db8::28]:0"), syn: true, want: format.Found, addr: "2001:db8::28"},
		{name: "after timestamps and nops", opts: cat([]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, v4), want: format.Found, addr: "203.0.113.7:40001"},
		{name: "disabled kind", opts: v4, enabled: format.AllFormats &^ (1 << format.K254), want: 0},
		{name: "no options", opts: nil, want: 0},
		{name: "after EOL ignored", opts: cat([]byte{0, 0, 0, 0}, v4), want: 0},
		{name: "fast open magic in ACK is TOA", opts: enc(t, format.K254, "203.0.113.7:63881"), want: format.Found, addr: "203.0.113.7:63881"},
		{name: "fast open magic in SYN is not", opts: enc(t, format.K254, "203.0.113.7:63881"), syn: true, want: format.FastOpen},
		{name: "fast open then TOA in SYN", opts: cat(enc(t, format.K254, "203.0.113.7:63881"), enc(t, format.K254, "203.0.113.8:1")), syn: true, want: format.FastOpen | format.Found, addr: "203.0.113.8:1"},
		{name: "repeated", opts: cat(v4, enc(t, format.K200, "198.51.100.1:2")), want: format.Found | format.Repeated, addr: "203.0.113.7:40001"},
		{name: "invalid first decides", opts: cat(enc(t, format.K254, "127.0.0.1:1"), v4), want: format.Invalid | format.Repeated},
		{name: "zero address", opts: []byte{254, 8, 0, 1, 0, 0, 0, 0}, want: format.Invalid},
		{name: "multicast v6", opts: enc(t, format.K254b, "[ff02::1]:1"), want: format.Invalid},
		{name: "cdn version 2", opts: []byte{28, 7, 2, 198, 51, 100, 1}, syn: true, want: format.Invalid},
		{name: "truncated", opts: []byte{1, 200, 30, 1, 2, 3}, want: format.Malformed},
		{name: "length 1", opts: []byte{200, 1, 0, 0}, want: format.Malformed},
		{name: "length byte missing", opts: []byte{1, 1, 1, 200}, want: format.Malformed},
		{name: "found then truncated", opts: cat(v4, []byte{9, 40}), want: format.Found | format.Malformed, addr: "203.0.113.7:40001"},
		{name: "kind 254 other length", opts: []byte{254, 6, 0xe2, 0xd4, 0xc3, 0xd9}, want: 0},
		{name: "user timeout option (28/4)", opts: []byte{28, 4, 0x80, 10}, syn: true, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			en := tc.enabled
			if en == 0 {
				en = all
			}
			for _, v6 := range []bool{false, true} {
				got := compare(t, p, tc.opts, tc.syn, v6, en)
				if got.Flags != tc.want {
					t.Fatalf("flags %s, want %s", got.Flags, tc.want)
				}
				if tc.addr == "" {
					continue
				}
				s := got.Addr.String()
				if got.HasPort {
					s = netip.AddrPortFrom(got.Addr, got.Port).String()
				}
				if s != tc.addr {
					t.Fatalf("address %s, want %s", s, tc.addr)
				}
			}
		})
	}
}

func TestMappedLoopbackIsInvalid(t *testing.T) {
	p := load(t)
	opt := []byte{254, 20, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1}
	if got := compare(t, p, opt, false, false, format.AllFormats); got.Flags != format.Invalid {
		t.Fatalf("::ffff:127.0.0.1 gave %s", got.Flags)
	}
}

// TestParserRandom compares the C parser with the Go reference over
// option lists built from TOA-like pieces and random bytes.
func TestParserRandom(t *testing.T) {
	p := load(t)
	r := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		hdr := randomHeader(r)
		compareHeader(t, p, hdr, r.IntN(2) == 0, format.Set(r.Uint32())&format.AllFormats)
	}
}

func randomHeader(r *rand.Rand) []byte {
	var opts []byte
	for len(opts) < 40 && r.IntN(6) != 0 {
		switch r.IntN(8) {
		case 0:
			opts = append(opts, 1)
		case 1:
			opts = append(opts, byte(r.IntN(4)))
		case 2, 3, 4:
			fs := format.All()
			f := fs[r.IntN(len(fs))]
			o := make([]byte, f.Len)
			for i := range o {
				o[i] = byte(r.Uint32())
			}
			o[0], o[1] = f.Kind, f.Len
			if r.IntN(3) == 0 {
				o[2], o[3] = 0xf9, 0x89
			}
			if !f.Port && r.IntN(2) == 0 {
				o[2] = 1
			}
			opts = append(opts, o...)
		default:
			l := r.IntN(12)
			o := make([]byte, l)
			for i := range o {
				o[i] = byte(r.Uint32())
			}
			opts = append(opts, o...)
		}
	}
	if len(opts) > 40 {
		opts = opts[:40]
	}
	hdr, _ := format.WithHeader(opts, r.IntN(2) == 0)
	if r.IntN(10) == 0 {
		// a data offset that lies
		hdr[12] = byte(r.IntN(16)) << 4
	}
	return hdr
}

func FuzzParser(f *testing.F) {
	p := load(f)
	f.Add([]byte{254, 8, 0x9c, 0x41, 203, 0, 113, 7}, true, uint32(format.AllFormats))
	f.Add([]byte{1, 1, 28, 7, 1, 198, 51, 100, 1}, true, uint32(format.AllFormats))
	f.Add([]byte{254, 20, 0xf9, 0x89}, false, uint32(format.AllFormats))
	f.Fuzz(func(t *testing.T, opts []byte, syn bool, formats uint32) {
		if len(opts) > 40 {
			opts = opts[:40]
		}
		hdr, err := format.WithHeader(opts, syn)
		if err != nil {
			t.Skip()
		}
		compareHeader(t, p, hdr, false, format.Set(formats)&format.AllFormats)
	})
}

func TestEncoderMatchesReference(t *testing.T) {
	p := load(t)
	for _, f := range format.All() {
		ap := "203.0.113.7:40001"
		if f.IPv6 {
			ap = "[2001:db8:c::7]:40002"
		}
		want := enc(t, f.ID, ap)
		got, err := p.Encode(f.ID, netip.MustParseAddrPort(ap))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: C encodes % x, Go % x", f, got, want)
		}
	}
	// A family that does not fit: nothing written.
	if got, err := p.Encode(format.K254, netip.MustParseAddrPort("[2001:db8::1]:1")); err != nil || len(got) != 0 {
		t.Errorf("IPv6 in 254/8: % x, %v", got, err)
	}
}
