package nftmark

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// Rule marks the packets for VIP with one of Ports (all ports when Ports
// is empty or [0]) and Protocol with Mark, setting only the bits of Mask:
//
//	meta mark set meta mark & ~Mask | Mark
//
// The other bits of the packet mark, which other software may use, are
// kept. IPVS matches a firewall-mark service against the whole mark, so
// a packet whose other bits are set does not match the service of Mark.
type Rule struct {
	VIP      netip.Addr
	Protocol ipvs.Protocol
	Ports    []uint16 // empty or [0]: every port
	Mark     uint32
	Mask     uint32 // the bits the rule sets; Mark has no bit outside it
}

func (r Rule) String() string {
	ports := "every port"
	if len(r.Ports) > 0 && !(len(r.Ports) == 1 && r.Ports[0] == 0) {
		s := make([]string, len(r.Ports))
		for i, p := range r.Ports {
			s[i] = fmt.Sprint(p)
		}
		ports = "ports " + strings.Join(s, ",")
	}
	return fmt.Sprintf("%s %s %s mark %#x/%#x", r.Protocol, r.VIP, ports, r.Mark, r.Mask)
}

// Equal reports whether two normalised rules are the same.
func (r Rule) Equal(o Rule) bool {
	return r.VIP == o.VIP && r.Protocol == o.Protocol && r.Mark == o.Mark && r.Mask == o.Mask && slices.Equal(r.Ports, o.Ports)
}

func (r Rule) allPorts() bool {
	return len(r.Ports) == 0 || (len(r.Ports) == 1 && r.Ports[0] == 0)
}

// Normalize checks rules and returns them in canonical form: one rule per
// VIP, protocol and mark, ports sorted without repeats (nil for every
// port), rules sorted by VIP, protocol and mark. It rejects an invalid
// VIP, protocol or mark, port 0 next to other ports, and a port that two
// rules would mark differently.
func Normalize(rules []Rule) ([]Rule, error) {
	type key struct {
		vip   netip.Addr
		proto ipvs.Protocol
		mark  uint32
		mask  uint32
	}
	merged := map[key]*Rule{}
	var errs []error
	for i, r := range rules {
		if !r.VIP.IsValid() || r.VIP.Is4In6() || r.VIP.Zone() != "" {
			errs = append(errs, fmt.Errorf("rule %d: invalid VIP %q", i, r.VIP))
			continue
		}
		switch r.Protocol {
		case ipvs.TCP, ipvs.UDP, ipvs.SCTP:
		default:
			errs = append(errs, fmt.Errorf("rule %d (%s): protocol %s is not tcp, udp or sctp", i, r.VIP, r.Protocol))
			continue
		}
		if r.Mark == 0 {
			errs = append(errs, fmt.Errorf("rule %d (%s): mark 0 marks nothing", i, r.VIP))
			continue
		}
		if r.Mark&^r.Mask != 0 {
			errs = append(errs, fmt.Errorf("rule %d (%s): mark %#x has bits outside mask %#x", i, r.VIP, r.Mark, r.Mask))
			continue
		}
		if !r.allPorts() && slices.Contains(r.Ports, 0) {
			errs = append(errs, fmt.Errorf("rule %d (%s): port 0 (every port) together with other ports", i, r.VIP))
			continue
		}
		k := key{r.VIP, r.Protocol, r.Mark, r.Mask}
		m, ok := merged[k]
		if !ok {
			m = &Rule{VIP: r.VIP, Protocol: r.Protocol, Mark: r.Mark, Mask: r.Mask, Ports: []uint16{}}
			merged[k] = m
		}
		switch {
		case r.allPorts() || m.Ports == nil:
			m.Ports = nil
		default:
			m.Ports = append(m.Ports, r.Ports...)
		}
	}
	out := make([]Rule, 0, len(merged))
	for _, m := range merged {
		if m.Ports != nil {
			slices.Sort(m.Ports)
			m.Ports = slices.Compact(m.Ports)
		}
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Rule) int {
		return cmp.Or(a.VIP.Compare(b.VIP), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Mark, b.Mark), cmp.Compare(a.Mask, b.Mask))
	})
	// A port of a VIP and protocol may carry one mark only.
	for i := range out {
		for j := i + 1; j < len(out) && out[j].VIP == out[i].VIP && out[j].Protocol == out[i].Protocol; j++ {
			a, b := out[i], out[j]
			if a.Ports == nil || b.Ports == nil {
				errs = append(errs, fmt.Errorf("%s %s: marks %d and %d both claim every port", a.Protocol, a.VIP, a.Mark, b.Mark))
				continue
			}
			for _, p := range a.Ports {
				if _, found := slices.BinarySearch(b.Ports, p); found {
					errs = append(errs, fmt.Errorf("%s %s port %d: marked both %d and %d", a.Protocol, a.VIP, p, a.Mark, b.Mark))
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Offsets of the IP destination address and the transport destination
// port.
const (
	ip4DaddrOffset = 16
	ip6DaddrOffset = 24
	dportOffset    = 2
)

// ruleExprs renders r as nftables rules, one per port (or one for every
// port):
//
//	meta nfproto ipv4 ip daddr VIP meta l4proto tcp th dport 80 meta mark set meta mark & ~MASK | MARK counter
func ruleExprs(r Rule) [][]expr.Any {
	proto, off, addr := byte(unix.NFPROTO_IPV4), uint32(ip4DaddrOffset), r.VIP.AsSlice()
	if r.VIP.Is6() {
		proto, off = unix.NFPROTO_IPV6, ip6DaddrOffset
	}
	head := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(len(addr))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(r.Protocol)}},
	}
	tail := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, ^r.Mask), Xor: binary.NativeEndian.AppendUint32(nil, r.Mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		&expr.Counter{},
	}
	if r.allPorts() {
		return [][]expr.Any{slices.Concat(head, tail)}
	}
	out := make([][]expr.Any, 0, len(r.Ports))
	for _, p := range r.Ports {
		port := []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: dportOffset, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, p)},
		}
		out = append(out, slices.Concat(head, port, tail))
	}
	return out
}

// parseExprs reads back a rule written by ruleExprs (one port at most).
func parseExprs(exprs []expr.Any) (Rule, error) {
	var (
		r       Rule
		loaded  string // what register 1 holds
		imm     []byte
		family  byte
		hasMark bool
	)
	// Earlier versions set the whole mark (an immediate): read as a mask
	// of every bit, which no rule of today has, so Set replaces them.
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Meta:
			switch {
			case e.SourceRegister && e.Key == expr.MetaKeyMARK && loaded == "masked":
				hasMark = true
			case e.SourceRegister && e.Key == expr.MetaKeyMARK && imm != nil && len(imm) == 4:
				r.Mark, r.Mask, hasMark = binary.NativeEndian.Uint32(imm), ^uint32(0), true
			case !e.SourceRegister && e.Key == expr.MetaKeyMARK:
				loaded = "mark"
			case !e.SourceRegister && e.Key == expr.MetaKeyNFPROTO:
				loaded = "nfproto"
			case !e.SourceRegister && e.Key == expr.MetaKeyL4PROTO:
				loaded = "l4proto"
			default:
				return Rule{}, fmt.Errorf("unexpected meta expression (key %d)", e.Key)
			}
		case *expr.Payload:
			switch {
			case e.Base == expr.PayloadBaseNetworkHeader && e.Offset == ip4DaddrOffset && e.Len == 4:
				loaded = "daddr"
			case e.Base == expr.PayloadBaseNetworkHeader && e.Offset == ip6DaddrOffset && e.Len == 16:
				loaded = "daddr"
			case e.Base == expr.PayloadBaseTransportHeader && e.Offset == dportOffset && e.Len == 2:
				loaded = "dport"
			default:
				return Rule{}, fmt.Errorf("unexpected payload expression (base %d offset %d len %d)", e.Base, e.Offset, e.Len)
			}
		case *expr.Cmp:
			if e.Op != expr.CmpOpEq {
				return Rule{}, errors.New("unexpected comparison")
			}
			switch {
			case loaded == "nfproto" && len(e.Data) == 1:
				family = e.Data[0]
			case loaded == "daddr":
				a, ok := netip.AddrFromSlice(e.Data)
				if !ok {
					return Rule{}, fmt.Errorf("bad address of %d bytes", len(e.Data))
				}
				r.VIP = a
			case loaded == "l4proto" && len(e.Data) == 1:
				r.Protocol = ipvs.Protocol(e.Data[0])
			case loaded == "dport" && len(e.Data) == 2:
				r.Ports = []uint16{binary.BigEndian.Uint16(e.Data)}
			default:
				return Rule{}, fmt.Errorf("unexpected comparison of %s", loaded)
			}
			loaded = ""
		case *expr.Bitwise:
			if loaded != "mark" || e.SourceRegister != 1 || e.DestRegister != 1 || e.Len != 4 || len(e.Mask) != 4 || len(e.Xor) != 4 {
				return Rule{}, errors.New("unexpected bitwise expression")
			}
			r.Mask, r.Mark = ^binary.NativeEndian.Uint32(e.Mask), binary.NativeEndian.Uint32(e.Xor)
			loaded = "masked"
		case *expr.Immediate:
			imm = e.Data
		case *expr.Counter:
		default:
			return Rule{}, fmt.Errorf("unexpected expression %T", e)
		}
	}
	switch {
	case !hasMark:
		return Rule{}, errors.New("rule sets no mark")
	case !r.VIP.IsValid():
		return Rule{}, errors.New("rule matches no address")
	case r.VIP.Is4() && family != unix.NFPROTO_IPV4, r.VIP.Is6() && family != unix.NFPROTO_IPV6:
		return Rule{}, errors.New("rule's protocol family does not match its address")
	}
	return r, nil
}

// checkTableName accepts the names nft itself accepts unquoted.
func checkTableName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("nftables table name %q: want 1 to 255 characters", name)
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("nftables table name %q: only letters, digits, '-', '_' and '.' allowed", name)
		}
	}
	return nil
}
