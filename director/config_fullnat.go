package director

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/lvs-node/lvs-node/director/fullnat"
	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/toa/format"
)

// ForwardingFullNAT is the forwarding of a full-NAT real server: IPVS
// NAT, with the source translated to one of the service's local
// addresses and the client's address written into a TCP option (TOA)
// for the real server (director/fullnat).
const ForwardingFullNAT = "fullnat"

// DefaultTOAKind is the TOA option kind full-NAT writes unless told
// otherwise: 254, read by every TOA implementation (toa.md).
const DefaultTOAKind = 254

// FullNAT holds the keys of a virtual service that has full-NAT real
// servers (forwarding: fullnat on the service or on a real server).
type FullNAT struct {
	// LocalAddresses are the director's source addresses towards the
	// real servers (DPVS's laddr): the real servers see connections
	// from them, and answer them, so they must be addresses of the
	// director on the real servers' side.
	LocalAddresses []string `yaml:"local_addresses"`
	// TOA is the option that carries the client's address.
	TOA *TOAOption `yaml:"toa"`

	// Filled by validation.
	laddrs []netip.Addr
	toa    format.ID
}

// TOAOption says which TCP option carries the client's address.
type TOAOption struct {
	// Kind is the option kind the real servers read: 254 (port and
	// address; IPv6 in the 20-byte form), 253 (IPv6 only), 200 (IPv4
	// only), 28 (address only, in the SYN), or 0 for no option. Default
	// 254 for TCP services.
	Kind *int `yaml:"kind"`
}

// same reports whether f and o say the same (as written and as parsed).
func (f *FullNAT) same(o *FullNAT) bool {
	kind := func(t *TOAOption) *int {
		if t == nil {
			return nil
		}
		return t.Kind
	}
	return slices.Equal(f.LocalAddresses, o.LocalAddresses) && (f.TOA == nil) == (o.TOA == nil) &&
		eqPtr(kind(f.TOA), kind(o.TOA)) && slices.Equal(f.laddrs, o.laddrs) && f.toa == o.toa
}

// parseForwarding is ipvs.ParseForward that also knows fullnat, which
// IPVS forwards by NAT.
func parseForwarding(s string) (ipvs.Forward, error) {
	if strings.EqualFold(s, ForwardingFullNAT) {
		return ipvs.Masq, nil
	}
	return ipvs.ParseForward(s)
}

// isFullNAT reports whether the j-th real server of vs is full-NAT: its
// own forwarding says so, or it has none and the service's does.
func (vs *VirtualService) isFullNAT(j int) bool {
	f := vs.RealServers[j].Forwarding
	if f == "" {
		f = vs.Forwarding
	}
	return f == ForwardingFullNAT || (len(f) == len(ForwardingFullNAT) && strings.EqualFold(f, ForwardingFullNAT))
}

// hasFullNAT reports whether vs has a full-NAT real server.
func (vs *VirtualService) hasFullNAT() bool {
	for j := range vs.RealServers {
		if vs.isFullNAT(j) {
			return true
		}
	}
	return false
}

// UsesFullNAT reports whether any real server is full-NAT.
func (c *Config) UsesFullNAT() bool {
	for i := range c.VirtualServices {
		if c.VirtualServices[i].hasFullNAT() {
			return true
		}
	}
	return false
}

// FullNATPaths returns the key paths that ask for full-NAT (the
// forwarding keys saying fullnat), in file order, for messages about
// what the kernel lacks.
func (c *Config) FullNATPaths() []string {
	var out []string
	for i := range c.VirtualServices {
		vs := &c.VirtualServices[i]
		p := config.Index("virtual_services", i)
		if strings.EqualFold(vs.Forwarding, ForwardingFullNAT) {
			out = append(out, config.Join(p, "forwarding"))
		}
		for j := range vs.RealServers {
			if strings.EqualFold(vs.RealServers[j].Forwarding, ForwardingFullNAT) {
				out = append(out, config.Join(config.Index(config.Join(p, "real_servers"), j), "forwarding"))
			}
		}
	}
	return out
}

// fullNATKey is the path of the first forwarding key of vs (at p) that
// says fullnat.
func fullNATKey(vs *VirtualService, p string) string {
	if strings.EqualFold(vs.Forwarding, ForwardingFullNAT) {
		return config.Join(p, "forwarding")
	}
	for j := range vs.RealServers {
		if strings.EqualFold(vs.RealServers[j].Forwarding, ForwardingFullNAT) {
			return config.Join(config.Index(config.Join(p, "real_servers"), j), "forwarding")
		}
	}
	return p
}

// fullNAT checks what the full-NAT services of c must agree on (the keys
// of each service are fullNATService's, called by service).
func (v *validator) fullNAT(c *Config) {
	formats := map[netip.Addr]string{} // local address -> the path that gave its format
	byAddr := map[netip.Addr]format.ID{}
	for i := range c.VirtualServices {
		vs := &c.VirtualServices[i]
		p := config.Index("virtual_services", i)
		for _, a := range vs.laddrs {
			if prev, ok := byAddr[a]; ok && prev != vs.toa {
				v.errorf(config.Join(p, "toa"), "local address %s writes another TOA format for %s: a local address writes one", a, formats[a])
				continue
			}
			byAddr[a], formats[a] = vs.toa, p
		}
	}
}

func (v *validator) fullNATService(vs *VirtualService, p string) {
	lp, tp := config.Join(p, "local_addresses"), config.Join(p, "toa")
	if !vs.hasFullNAT() {
		if vs.LocalAddresses != nil {
			v.errorf(lp, "local_addresses apply to full-NAT services only (forwarding: fullnat)")
		}
		if vs.TOA != nil {
			v.errorf(tp, "toa applies to full-NAT services only (forwarding: fullnat)")
		}
		return
	}
	if len(vs.LocalAddresses) == 0 {
		at := lp
		if !v.doc.Has(lp) {
			at = fullNATKey(vs, p) // the key that asks for full-NAT
		}
		v.errorf(at, "full-NAT needs local_addresses: the director's source addresses towards the real servers, such as [10.1.0.2]")
	}
	seen := map[netip.Addr]bool{}
	for k, s := range vs.LocalAddresses {
		kp := config.Index(lp, k)
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil || a.Zone() != "":
			v.errorf(kp, "want an IPv4 or IPv6 address, got %q", s)
		case !a.Unmap().IsGlobalUnicast():
			v.errorf(kp, "%s cannot be a source address", a)
		case ipvs.FamilyOf(a.Unmap()) != vs.family:
			v.errorf(kp, "%s local address %s for an %s service: the real servers of an %s service are %s", famName(ipvs.FamilyOf(a.Unmap())), a, famName(vs.family), famName(vs.family), famName(vs.family))
		case seen[a.Unmap()]:
			v.errorf(kp, "%s is listed twice", a)
		default:
			seen[a.Unmap()] = true
			vs.laddrs = append(vs.laddrs, a.Unmap())
		}
	}
	slices.SortFunc(vs.laddrs, netip.Addr.Compare)

	kind := 0
	if vs.proto == ipvs.TCP {
		kind = DefaultTOAKind
	}
	if vs.TOA != nil && vs.TOA.Kind != nil {
		kind = *vs.TOA.Kind
	}
	kp := config.Join(tp, "kind")
	switch {
	case kind == 0:
		vs.toa = format.None
	case vs.proto != ipvs.TCP:
		v.errorf(kp, "TOA is a TCP option, this service is %s: leave toa out or set kind 0", vs.proto)
	default:
		id, err := toaFormat(kind, vs.family == afInet6)
		if err != nil {
			v.errorf(kp, "%v", err)
		}
		vs.toa = id
	}
}

// toaFormat returns the format of kind for IPv4 or IPv6 clients.
func toaFormat(kind int, v6 bool) (format.ID, error) {
	if kind < 0 || kind > 255 {
		return format.None, fmt.Errorf("want an option kind: 254, 253, 200 or 28, got %d", kind)
	}
	for _, f := range format.All() {
		if int(f.Kind) == kind && f.IPv6 == v6 {
			return f.ID, nil
		}
	}
	for _, f := range format.All() {
		if int(f.Kind) == kind {
			fam := "IPv4"
			if f.IPv6 {
				fam = "IPv6"
			}
			return format.None, fmt.Errorf("kind %d carries %s addresses only (toa.md), this service is %s", kind, fam, map[bool]string{false: "IPv4", true: "IPv6"}[v6])
		}
	}
	return format.None, fmt.Errorf("no TOA format uses kind %d (want 254, 253, 200 or 28)", kind)
}

// fullNATSpec is what cfg asks of full-NAT: a target per full-NAT real
// server and service port, and a pool per set of local addresses.
func (c *Config) fullNATSpec() fullnat.Spec {
	var s fullnat.Spec
	pool := func(addrs []netip.Addr, f format.ID) int {
		for i, p := range s.Pools {
			if p.TOA == f && slices.Equal(p.Addrs, addrs) {
				return i
			}
		}
		s.Pools = append(s.Pools, fullnat.Pool{Addrs: slices.Clone(addrs), TOA: f})
		return len(s.Pools) - 1
	}
	for i := range c.VirtualServices {
		vs := &c.VirtualServices[i]
		if !vs.hasFullNAT() || len(vs.laddrs) == 0 {
			continue
		}
		pi := pool(vs.laddrs, vs.toa)
		base := fullnat.Target{Service: vs.Name, Protocol: uint8(vs.proto), Pool: pi}
		var ports []uint16
		switch {
		case vs.FWMark != nil:
			base.FWMark = *vs.FWMark
			ports = []uint16{0}
		case vs.Ports != nil:
			base.VIP = vs.vip
			ports = vs.Ports
		default:
			base.VIP = vs.vip
			ports = []uint16{*vs.Port}
		}
		for j := range vs.RealServers {
			if !vs.isFullNAT(j) {
				continue
			}
			rs := &vs.RealServers[j]
			for _, port := range ports {
				t := base
				t.VPort, t.RS, t.RPort = port, rs.addr, *rs.Port
				s.Targets = append(s.Targets, t)
			}
		}
	}
	return s
}
