package fullnat

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/lvs-node/lvs-node/toa/format"
)

// Protocol numbers (IPPROTO_*) a Target may name.
const (
	ProtoTCP  = 6
	ProtoUDP  = 17
	ProtoSCTP = 132
)

// Source ports of the translated connections. Every (local address,
// port) pair towards a real server is unique: the kernel's source NAT
// picks a port no other connection of the pair uses.
const (
	PortFirst = 1024
	PortLast  = 65535
)

// Spec is the full-NAT state the director asks of the kernel: which
// packets IPVS forwards get which local addresses, and which TOA format
// each local address writes.
type Spec struct {
	Targets []Target
	Pools   []Pool
}

// Target is the traffic of one virtual service towards one real server:
// source NAT to the addresses of Pools[Pool].
type Target struct {
	Service  string     // the virtual service's name (rule comments)
	Protocol uint8      // ProtoTCP, ProtoUDP or ProtoSCTP
	VIP      netip.Addr // the service address; invalid for a fwmark service
	VPort    uint16     // the service port; 0 for every port
	FWMark   uint32     // a fwmark service's mark (VIP invalid)
	RS       netip.Addr // the real server
	RPort    uint16     // its port; 0 keeps the client's destination port
	Pool     int
}

// Pool is a set of local addresses (one family) and the TOA format they
// write (format.None: no option).
type Pool struct {
	Addrs []netip.Addr
	TOA   format.ID
}

// Is6 reports whether t is an IPv6 target.
func (t Target) Is6() bool { return t.RS.Is6() }

func (t Target) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", t.Service, protoName(t.Protocol))
	switch {
	case !t.VIP.IsValid():
		fmt.Fprintf(&b, " fwmark %d", t.FWMark)
	case t.VPort == 0:
		fmt.Fprintf(&b, " %s every port", t.VIP)
	default:
		fmt.Fprintf(&b, " %s", netip.AddrPortFrom(t.VIP, t.VPort))
	}
	if t.RPort == 0 {
		fmt.Fprintf(&b, " -> %s", t.RS)
	} else {
		fmt.Fprintf(&b, " -> %s", netip.AddrPortFrom(t.RS, t.RPort))
	}
	return b.String()
}

func protoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoSCTP:
		return "sctp"
	}
	return fmt.Sprintf("proto %d", p)
}

// Empty reports whether s asks for nothing.
func (s Spec) Empty() bool { return len(s.Targets) == 0 }

// Check reports a spec the kernel side cannot carry out: a target
// without its pool, a pool of mixed or wrong families, a local address
// that two pools give different formats.
func (s Spec) Check() error {
	formats := map[netip.Addr]format.ID{}
	for i, p := range s.Pools {
		if len(p.Addrs) == 0 {
			return fmt.Errorf("pool %d has no local address", i)
		}
		for _, a := range p.Addrs {
			if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
				return fmt.Errorf("pool %d: bad local address %s", i, a)
			}
			if a.Is6() != p.Addrs[0].Is6() {
				return fmt.Errorf("pool %d mixes IPv4 and IPv6 local addresses", i)
			}
			if f, ok := formats[a]; ok && f != p.TOA {
				return fmt.Errorf("local address %s writes two TOA formats", a)
			}
			formats[a] = p.TOA
		}
		if p.TOA != format.None {
			f, ok := format.Lookup(p.TOA)
			if !ok {
				return fmt.Errorf("pool %d: unknown TOA format %d", i, p.TOA)
			}
			if f.IPv6 != p.Addrs[0].Is6() {
				return fmt.Errorf("pool %d: TOA format %s does not fit %s clients", i, f, famName(p.Addrs[0]))
			}
		}
	}
	for _, t := range s.Targets {
		if t.Pool < 0 || t.Pool >= len(s.Pools) {
			return fmt.Errorf("%s: no pool %d", t, t.Pool)
		}
		if !t.RS.IsValid() || t.RS.Is4In6() {
			return fmt.Errorf("%s: bad real server address", t)
		}
		if t.VIP.IsValid() == (t.FWMark != 0) {
			return fmt.Errorf("%s: want a VIP or a fwmark", t)
		}
		if t.VIP.IsValid() && t.VIP.Is6() != t.RS.Is6() || s.Pools[t.Pool].Addrs[0].Is6() != t.RS.Is6() {
			return fmt.Errorf("%s: mixes IPv4 and IPv6", t)
		}
		switch t.Protocol {
		case ProtoTCP, ProtoUDP, ProtoSCTP:
		default:
			return fmt.Errorf("%s: unsupported protocol", t)
		}
	}
	return nil
}

func famName(a netip.Addr) string {
	if a.Is6() {
		return "IPv6"
	}
	return "IPv4"
}

// Union returns the targets and pools of s and o together (o's targets
// that s already has are not repeated). The director applies the union
// of the old and the new spec before it changes IPVS, so that no
// connection IPVS forwards meanwhile goes out untranslated.
func (s Spec) Union(o Spec) Spec {
	out := Spec{Targets: slices.Clone(s.Targets), Pools: slices.Clone(s.Pools)}
	poolOf := func(p Pool) int {
		for i, q := range out.Pools {
			if q.TOA == p.TOA && slices.Equal(q.Addrs, p.Addrs) {
				return i
			}
		}
		out.Pools = append(out.Pools, p)
		return len(out.Pools) - 1
	}
	for _, t := range o.Targets {
		t.Pool = poolOf(o.Pools[t.Pool])
		if !slices.Contains(out.Targets, t) {
			out.Targets = append(out.Targets, t)
		}
	}
	return out
}

// Equal reports whether s and o ask for the same thing in the same order.
func (s Spec) Equal(o Spec) bool {
	return slices.Equal(s.Targets, o.Targets) && slices.EqualFunc(s.Pools, o.Pools, func(a, b Pool) bool {
		return a.TOA == b.TOA && slices.Equal(a.Addrs, b.Addrs)
	})
}

// LocalAddrs returns every local address with the format it writes,
// sorted by address.
func (s Spec) LocalAddrs() []LocalAddr {
	seen := map[netip.Addr]bool{}
	var out []LocalAddr
	for _, p := range s.Pools {
		for _, a := range p.Addrs {
			if !seen[a] {
				seen[a] = true
				out = append(out, LocalAddr{Addr: a, TOA: p.TOA})
			}
		}
	}
	slices.SortFunc(out, func(a, b LocalAddr) int { return a.Addr.Compare(b.Addr) })
	return out
}

// LocalAddr is one local address and its TOA format.
type LocalAddr struct {
	Addr netip.Addr
	TOA  format.ID
}

// RealServers returns the real servers' addresses, sorted, without
// repeats.
func (s Spec) RealServers() []netip.Addr {
	var out []netip.Addr
	for _, t := range s.Targets {
		out = append(out, t.RS)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// WritesTOA reports whether a pool writes an option.
func (s Spec) WritesTOA() bool {
	return slices.ContainsFunc(s.Pools, func(p Pool) bool { return p.TOA != format.None })
}

// sortedTargets returns the targets of one family in a stable order.
func (s Spec) targetsOf(v6 bool) []Target {
	var out []Target
	for _, t := range s.Targets {
		if t.Is6() == v6 {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b Target) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), a.RS.Compare(b.RS), cmp.Compare(a.RPort, b.RPort), cmp.Compare(a.VPort, b.VPort))
	})
	return out
}
