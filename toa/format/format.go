package format

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ID names one TOA format. Its value is the bit of the format in a Set
// (the same numbering as enum toa_format_id in toa_format.h).
type ID uint8

// The formats.
const (
	None  ID = 0
	K254  ID = 1 // 254/8: port, IPv4
	K254b ID = 2 // 254/20: port, IPv6
	K253  ID = 3 // 253/20: port, IPv6
	K200  ID = 4 // 200/8: port, IPv4
	K28   ID = 5 // 28/7: version 1, IPv4, no port
	K28b  ID = 6 // 28/19: version 1, IPv6, no port
)

// Format describes one option layout.
type Format struct {
	ID   ID
	Kind uint8
	Len  uint8
	IPv6 bool
	// Port: the option carries the client's port; otherwise the
	// connection's own peer port stays.
	Port bool
	// SYN: carried in the SYN only, so reading it needs the saved SYN.
	SYN bool
}

func (f Format) String() string { return fmt.Sprintf("%d/%d", f.Kind, f.Len) }

// All returns every format, in ID order.
func All() []Format {
	return []Format{
		{ID: K254, Kind: 254, Len: 8, Port: true},
		{ID: K254b, Kind: 254, Len: 20, IPv6: true, Port: true},
		{ID: K253, Kind: 253, Len: 20, IPv6: true, Port: true},
		{ID: K200, Kind: 200, Len: 8, Port: true},
		{ID: K28, Kind: 28, Len: 7, SYN: true},
		{ID: K28b, Kind: 28, Len: 19, IPv6: true, SYN: true},
	}
}

// Lookup returns the format with id.
func Lookup(id ID) (Format, bool) {
	for _, f := range All() {
		if f.ID == id {
			return f, true
		}
	}
	return Format{}, false
}

// Of returns the format of an option with kind and length, or None.
func Of(kind, length uint8) ID {
	for _, f := range All() {
		if f.Kind == kind && f.Len == length {
			return f.ID
		}
	}
	return None
}

// Kinds returns the option kinds the formats use, ascending.
func Kinds() []uint8 { return []uint8{28, 200, 253, 254} }

// Set is a set of formats, one bit per ID.
type Set uint32

// AllFormats holds every format.
const AllFormats Set = 1<<K254 | 1<<K254b | 1<<K253 | 1<<K200 | 1<<K28 | 1<<K28b

// ErrUnknownKind is returned for an option kind no format uses.
var ErrUnknownKind = errors.New("no TOA format uses this option kind")

// ForKinds returns the formats that use the given option kinds.
func ForKinds(kinds ...uint8) (Set, error) {
	var s Set
	for _, k := range kinds {
		found := false
		for _, f := range All() {
			if f.Kind == k {
				s = s.With(f.ID)
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("kind %d: %w (want one of 254, 253, 200, 28)", k, ErrUnknownKind)
		}
	}
	return s, nil
}

// With returns s with id added.
func (s Set) With(id ID) Set { return s | 1<<id }

// Has reports whether s holds id.
func (s Set) Has(id ID) bool { return id != None && s&(1<<id) != 0 }

// NeedsSYN reports whether a format of s is carried in the SYN only.
func (s Set) NeedsSYN() bool { return s.Has(K28) || s.Has(K28b) }

func (s Set) String() string {
	var names []string
	for _, f := range All() {
		if s.Has(f.ID) {
			names = append(names, f.String())
		}
	}
	return strings.Join(names, ",")
}

// Fast Open shares kind 254 and is told apart by this magic.
const FastOpenMagic = 0xF989

// CDNVersion is the version byte of kind 28.
const CDNVersion = 1

// NAT64Lookup is the getsockopt option name (level IPPROTO_IP) that
// returns an IPv6 client's address on an IPv4 socket.
const NAT64Lookup = 4096

// ErrFamily is returned when an address does not fit a format.
var ErrFamily = errors.New("address family does not fit the format")

// Encode returns the option of format id carrying ap. For the formats
// without a port, the port of ap is not written.
func Encode(id ID, ap netip.AddrPort) ([]byte, error) {
	f, ok := Lookup(id)
	if !ok {
		return nil, fmt.Errorf("unknown TOA format %d", id)
	}
	a := ap.Addr()
	if f.IPv6 {
		if !a.Is6() || a.Is4In6() {
			return nil, fmt.Errorf("%s in %s: %w", a, f, ErrFamily)
		}
	} else {
		a = a.Unmap()
		if !a.Is4() {
			return nil, fmt.Errorf("%s in %s: %w", a, f, ErrFamily)
		}
	}
	b := make([]byte, 0, f.Len)
	b = append(b, f.Kind, f.Len)
	if f.Port {
		b = append(b, byte(ap.Port()>>8), byte(ap.Port()))
	} else {
		b = append(b, CDNVersion)
	}
	return append(b, a.AsSlice()...), nil
}

// Flags describe a parse, as the C parser's TOA_R_* flags.
type Flags uint32

// The flags.
const (
	Found     Flags = 1  // an address was taken
	Malformed Flags = 2  // the option list is broken (bad length, truncated)
	Invalid   Flags = 4  // the deciding TOA option was invalid
	Repeated  Flags = 8  // a further TOA option was ignored
	FastOpen  Flags = 16 // a Fast Open option of kind 254 was skipped (SYN)
)

func (f Flags) String() string {
	var s []string
	for _, x := range []struct {
		f Flags
		n string
	}{{Found, "found"}, {Malformed, "malformed"}, {Invalid, "invalid"}, {Repeated, "repeated"}, {FastOpen, "fastopen"}} {
		if f&x.f != 0 {
			s = append(s, x.n)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// Result is what a parse found.
type Result struct {
	Flags  Flags
	Format ID
	Addr   netip.Addr
	// Port is the client's port when HasPort.
	Port    uint16
	HasPort bool
}

// Bad reports whether the parse saw something to count as malformed.
func (r Result) Bad() bool { return r.Flags&(Malformed|Invalid|Repeated) != 0 }

// Header lengths.
const (
	HeaderMin = 20
	HeaderMax = 60
)

// ParseHeader parses the options of a TCP header (its data offset gives
// the length; bytes past it are ignored) for the formats in enabled.
func ParseHeader(hdr []byte, enabled Set) Result {
	if len(hdr) < HeaderMin {
		return Result{Flags: Malformed}
	}
	hl := int(hdr[12]>>4) * 4
	if hl > len(hdr) {
		return Result{Flags: Malformed}
	}
	return Parse(hdr[:hl], enabled, hdr[13]&0x02 != 0)
}

// Parse walks the options of the TCP header hdr (all of it: len(hdr) is
// the header length) by the rules of toa_parse.h: EOL ends the walk, NOP
// is skipped, a bad length stops it as malformed, the first option of an
// enabled format decides, later ones are repeats, and in a SYN kind 254
// with the Fast Open magic is not TOA.
func Parse(hdr []byte, enabled Set, syn bool) Result {
	var r Result
	if len(hdr) < HeaderMin || len(hdr) > HeaderMax {
		return Result{Flags: Malformed}
	}
	pos, id := 0, None
	for i := HeaderMin; i < len(hdr); {
		kind := hdr[i]
		if kind == 0 {
			break
		}
		if kind == 1 {
			i++
			continue
		}
		if i+1 >= len(hdr) {
			r.Flags |= Malformed
			break
		}
		l := int(hdr[i+1])
		if l < 2 || i+l > len(hdr) {
			r.Flags |= Malformed
			break
		}
		if f := Of(kind, uint8(l)); f != None && enabled.Has(f) {
			switch {
			case kind == 254 && syn && hdr[i+2] == FastOpenMagic>>8 && hdr[i+3] == FastOpenMagic&0xff:
				r.Flags |= FastOpen
			case pos != 0:
				r.Flags |= Repeated
			default:
				pos, id = i, f
			}
		}
		i += l
	}
	if pos == 0 {
		return r
	}
	f, _ := Lookup(id)
	opt := hdr[pos : pos+int(f.Len)]
	raw := opt[4:]
	if !f.Port {
		if opt[2] != CDNVersion {
			return Result{Flags: r.Flags | Invalid}
		}
		raw = opt[3:]
	}
	a, _ := netip.AddrFromSlice(raw)
	if Invalid4or6(a) {
		return Result{Flags: r.Flags | Invalid}
	}
	r.Addr, r.Format, r.Flags = a, id, r.Flags|Found
	if f.Port {
		r.HasPort, r.Port = true, uint16(opt[2])<<8|uint16(opt[3])
	}
	return r
}

// Invalid4or6 reports addresses no balancer may hand out as a client's:
// unspecified, loopback, multicast, IPv4 240.0.0.0/4 (with the broadcast
// address), and ::ffff:a.b.c.d of any of the IPv4 ones.
func Invalid4or6(a netip.Addr) bool {
	if a.Is4() || a.Is4In6() {
		v := a.Unmap().As4()
		if a.Is4In6() && v == [4]byte{} {
			return true
		}
		return v == [4]byte{} || v[0] == 127 || v[0] >= 224
	}
	b := a.As16()
	return a.IsUnspecified() || a.IsLoopback() || b[0] == 0xff
}

// WithHeader builds a TCP header around options (padded with NOP to a
// multiple of four; at most 40 bytes), with the SYN flag when syn.
func WithHeader(opts []byte, syn bool) ([]byte, error) {
	if len(opts) > HeaderMax-HeaderMin {
		return nil, fmt.Errorf("%d bytes of options: at most 40 fit", len(opts))
	}
	pad := (4 - len(opts)%4) % 4
	hl := HeaderMin + len(opts) + pad
	h := make([]byte, HeaderMin, hl)
	h[0], h[1], h[2], h[3] = 0x30, 0x39, 0x00, 0x50 // ports 12345 -> 80
	h[12] = byte(hl/4) << 4
	h[13] = 0x10 // ACK
	if syn {
		h[13] = 0x02
	}
	h[14], h[15] = 0xff, 0xff
	h = append(h, opts...)
	h = append(h, slices.Repeat([]byte{1}, pad)...)
	return h, nil
}
