package ipvs

import (
	"fmt"
	"net/netip"
	"strings"
)

// Protocol is an IP protocol number as IPVS stores it.
type Protocol uint16

// The protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case SCTP:
		return "sctp"
	case 0:
		return "none"
	}
	return fmt.Sprintf("proto%d", uint16(p))
}

// ParseProtocol accepts tcp, udp and sctp in any case.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	case "sctp":
		return SCTP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want tcp, udp or sctp)", s)
}

// Forward is the packet-forwarding method of a real server
// (IP_VS_CONN_F_FWD_MASK values).
type Forward uint32

// The forwarding methods.
const (
	Masq   Forward = 0 // NAT
	Local  Forward = 1
	Tunnel Forward = 2 // TUN
	Route  Forward = 3 // DR ("gatewaying")
)

func (f Forward) String() string {
	switch f {
	case Masq:
		return "nat"
	case Local:
		return "local"
	case Tunnel:
		return "tun"
	case Route:
		return "dr"
	}
	return fmt.Sprintf("fwd%d", uint32(f))
}

// ParseForward accepts dr, nat and tun (and ipvsadm's route, masq, ipip,
// gate).
func ParseForward(s string) (Forward, error) {
	switch strings.ToLower(s) {
	case "dr", "route", "gate", "gatewaying", "droute":
		return Route, nil
	case "nat", "masq", "masquerading":
		return Masq, nil
	case "tun", "tunnel", "ipip":
		return Tunnel, nil
	}
	return 0, fmt.Errorf("unknown forwarding %q (want dr, nat or tun)", s)
}

// TunnelType is the encapsulation of a TUN real server.
type TunnelType uint8

// Tunnel encapsulations (IP_VS_CONN_F_TUNNEL_TYPE_*).
const (
	TunIPIP TunnelType = 0
	TunGUE  TunnelType = 1
	TunGRE  TunnelType = 2
)

// Service flags (IP_VS_SVC_F_*).
const (
	FlagPersistent uint32 = 0x0001
	FlagHashed     uint32 = 0x0002 // set by the kernel; ignored when comparing
	FlagOnePacket  uint32 = 0x0004
	FlagSched1     uint32 = 0x0008 // sh-fallback, mh-fallback
	FlagSched2     uint32 = 0x0010 // sh-port, mh-port
	FlagSched3     uint32 = 0x0020
)

// ServiceKey identifies a virtual service: either address, protocol and
// port, or a firewall mark with an address family.
type ServiceKey struct {
	Family   uint16 // unix.AF_INET or unix.AF_INET6
	Protocol Protocol
	Addr     netip.Addr // zero for firewall-mark services
	Port     uint16
	FWMark   uint32
}

// String renders the key the way ipvsadm names a service: "TCP
// 10.0.0.1:80", "UDP [2001:db8::1]:53" or "FWM 10" (with "IPv6" for an
// IPv6 mark service).
func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		if k.Family == afInet6 {
			return fmt.Sprintf("FWM %d IPv6", k.FWMark)
		}
		return fmt.Sprintf("FWM %d", k.FWMark)
	}
	return fmt.Sprintf("%s %s", strings.ToUpper(k.Protocol.String()), netip.AddrPortFrom(k.Addr, k.Port))
}

// Address families as the kernel numbers them.
const (
	afInet  = 2
	afInet6 = 10
)

// FamilyOf returns the address family of a.
func FamilyOf(a netip.Addr) uint16 {
	if a.Is4() {
		return afInet
	}
	return afInet6
}

// Service is the configuration of one virtual service.
type Service struct {
	ServiceKey
	Scheduler string
	Flags     uint32 // FlagPersistent, FlagOnePacket, FlagSched*; FlagHashed is ignored
	Timeout   uint32 // persistence timeout in seconds (0 when not persistent)
	Netmask   uint32 // persistence netmask: an IPv4 mask in host order, or an IPv6 prefix length
	PE        string // persistence engine ("sip"), usually empty
}

// Equal reports whether two services have the same configuration, ignoring
// the kernel-owned hashed flag.
func (s Service) Equal(o Service) bool {
	return s.ServiceKey == o.ServiceKey && s.Scheduler == o.Scheduler &&
		s.Flags&^FlagHashed == o.Flags&^FlagHashed && s.Timeout == o.Timeout &&
		s.Netmask == o.Netmask && s.PE == o.PE
}

// DestKey identifies a real server within a service.
type DestKey struct {
	Addr netip.Addr
	Port uint16
}

func (k DestKey) String() string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

// Destination is the configuration of one real server of a service.
type Destination struct {
	DestKey
	Forward        Forward
	Weight         int32
	UpperThreshold uint32
	LowerThreshold uint32
	TunType        TunnelType
	TunPort        uint16
	TunFlags       uint16
}

// Equal reports whether two destinations have the same configuration.
func (d Destination) Equal(o Destination) bool { return d == o }

// Stats are the 64-bit counters and rate estimates of a service or real
// server.
type Stats struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
	CPS, InPPS, OutPPS, InBPS, OutBPS         uint64
}

// DestStatus is what the kernel reports of a real server besides its
// configuration.
type DestStatus struct {
	ActiveConns  uint32
	InactConns   uint32
	PersistConns uint32
	Stats        Stats
}

// DestEntry is one real server as read from the kernel.
type DestEntry struct {
	Destination
	DestStatus
}

// ServiceEntry is one virtual service with its real servers as read from
// the kernel.
type ServiceEntry struct {
	Service
	Stats Stats
	Dests []DestEntry
}

// Table is a whole IPVS table.
type Table struct {
	Services []ServiceEntry
}

// OpKind is what an Op does.
type OpKind uint8

// The operations on an IPVS table.
const (
	AddService OpKind = iota + 1
	EditService
	DelService
	AddDest
	EditDest
	DelDest
)

func (k OpKind) String() string {
	switch k {
	case AddService:
		return "add-service"
	case EditService:
		return "edit-service"
	case DelService:
		return "delete-service"
	case AddDest:
		return "add-server"
	case EditDest:
		return "edit-server"
	case DelDest:
		return "delete-server"
	}
	return fmt.Sprintf("op%d", uint8(k))
}

// Op is one change to an IPVS table. Dest is meaningful for the *Dest
// kinds only; Service must be complete for AddService and EditService and
// needs only its key otherwise.
type Op struct {
	Kind    OpKind
	Service Service
	Dest    Destination
}

// Info is what the kernel says about its IPVS, printed in the first line
// of a listing.
type Info struct {
	Version       uint32 // major<<16 | minor<<8 | patch (0x010201 for 1.2.1)
	ConnTableSize uint32 // buckets of the connection hash table
}

// VersionString renders the version as ipvsadm does ("1.2.1").
func (i Info) VersionString() string {
	return fmt.Sprintf("%d.%d.%d", i.Version>>16&0xff, i.Version>>8&0xff, i.Version&0xff)
}
