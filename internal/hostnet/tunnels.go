package hostnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Fou is a FOU/GUE receive port (ip fou add port PORT gue): UDP packets
// to it are stripped of their UDP and GUE headers and handed to the
// protocol the GUE header names (IPIP for IPv4 in IPv4, IPv6 for sit).
type Fou struct {
	Port   uint16 `json:"port"`
	Family int    `json:"family"` // 4 or 6: the outer header's
}

func (f Fou) String() string {
	s := fmt.Sprintf("ip fou add port %d gue", f.Port)
	if f.Family == 6 {
		s += " -6"
	}
	return s
}
func (f Fou) Key() string { return fmt.Sprintf("fou %d %d", f.Family, f.Port) }

// Link kinds lvs-node creates besides dummy.
const (
	// KindIP6Tnl is an ip6tnl device in external (collect_md) mode with
	// protocol any: it receives IPv4 and IPv6 packets tunnelled in IPv6
	// from any sender to any local address.
	KindIP6Tnl = "ip6tnl"
)

// newLink returns the netlink link for a Link lvs-node may create.
func newLink(l Link) (netlink.Link, error) {
	attrs := netlink.LinkAttrs{Name: l.Name}
	switch l.Kind {
	case "dummy":
		return &netlink.Dummy{LinkAttrs: attrs}, nil
	case KindIP6Tnl:
		return &netlink.Ip6tnl{LinkAttrs: attrs, FlowBased: true}, nil
	}
	return nil, fmt.Errorf("cannot create links of type %s", l.Kind)
}

func fouFamily(f Fou) int {
	if f.Family == 6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// addFou adds a GUE port as "ip fou add port PORT gue" does: port, type
// and family, without the IP protocol attribute (netlink.FouAdd sends
// protocol 0 for GUE, which the kernel refuses with ERANGE).
func (k *NetlinkKernel) addFou(f Fou) error {
	fam, err := netlink.FouFamilyId()
	if err != nil {
		return fmt.Errorf("FOU (is the fou module loaded?): %w", err)
	}
	req := nl.NewNetlinkRequest(fam, unix.NLM_F_ACK)
	port := make([]byte, 2)
	binary.BigEndian.PutUint16(port, f.Port)
	raw := []byte{netlink.FOU_CMD_ADD, 1, 0, 0}
	for _, a := range []*nl.RtAttr{
		nl.NewRtAttr(netlink.FOU_ATTR_PORT, port),
		nl.NewRtAttr(netlink.FOU_ATTR_TYPE, []byte{netlink.FOU_ENCAP_GUE}),
		nl.NewRtAttr(netlink.FOU_ATTR_AF, []byte{uint8(fouFamily(f))}),
	} {
		raw = append(raw, a.Serialize()...)
	}
	req.AddRawData(raw)
	_, err = req.Execute(unix.NETLINK_GENERIC, 0)
	return err
}

func (k *NetlinkKernel) delFou(f Fou) error {
	return k.h.FouDel(netlink.Fou{Family: fouFamily(f), Port: int(f.Port)})
}

// fous lists the FOU ports; none when the fou module is not loaded (its
// generic netlink family is missing).
func (k *NetlinkKernel) fous() ([]Fou, error) {
	var out []Fou
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		list, err := k.h.FouList(fam)
		if err != nil {
			if errors.Is(err, syscall.ENOENT) {
				return nil, nil
			}
			return nil, fmt.Errorf("list FOU ports: %w", err)
		}
		for _, f := range list {
			x := Fou{Port: uint16(f.Port), Family: 4}
			if f.Family == unix.AF_INET6 {
				x.Family = 6
			}
			out = append(out, x)
		}
	}
	return out, nil
}
