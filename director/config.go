package director

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// Defaults of director.yaml.
const (
	DefaultResyncInterval = 30 * time.Second
	DefaultStateDir       = "/var/lib/lvs-node"
	DefaultMetrics        = "127.0.0.1:9722"
	DefaultControl        = "/run/lvs-node/director/control.sock" // the unit's RuntimeDirectory
	DefaultNFTable        = "lvs_node"
	DefaultVIPInterface   = "lo"
	DefaultScheduler      = "wlc"
	DefaultForwarding     = "dr"
	DefaultProtocol       = "tcp"
	DefaultWeight         = 1
	DefaultPersistence    = 300 * time.Second
	maxWeight             = 65535
)

// Schedulers are the IPVS schedulers a service may name. twos exists only
// in recent kernels.
func schedulers() []string {
	return []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}
}

// Config is a decoded and validated director.yaml.
type Config struct {
	Director Settings `yaml:"director"`
	Listen   Listen   `yaml:"listen"`
	// Include names files of virtual services (glob patterns, relative to
	// the directory of this file), read in order, each pattern's matches
	// sorted. See Loader.
	Include         []string         `yaml:"include"`
	VirtualServices []VirtualService `yaml:"virtual_services"`
	HA              HAConfig         `yaml:",inline"` // sync_daemon, announce (config_ha.go)

	// from is what loading knows of how this configuration differs from
	// the one loaded before it (nil: nothing).
	from *delta
}

// Settings are the director-wide settings.
type Settings struct {
	ResyncInterval config.Duration `yaml:"resync_interval"`
	StateDir       string          `yaml:"state_dir"`
	// NFTable is the nftables table (family inet) lvs-node owns for the
	// firewall marks of multi-port services.
	NFTable string `yaml:"nftables_table"`
	// AutoFWMark is the range and mask of the marks of ports: services
	// (fwmark.go).
	AutoFWMark FWMarkRange `yaml:"auto_fwmark,hex"`
	// VIPInterface receives the VIPs of services with bind_vip.
	VIPInterface string  `yaml:"vip_interface"`
	Sysctls      Sysctls `yaml:"sysctls"`
	// Timeouts are the connection timeouts (config_timeouts.go).
	Timeouts *Timeouts `yaml:"timeouts"`
}

// Sysctls are the kernel settings the director manages. A nil value
// leaves the setting as it is.
type Sysctls struct {
	// IPForward: unset turns forwarding on when a NAT real server is
	// configured; true always; false never touches it.
	IPForward               *bool  `yaml:"ip_forward"`
	ExpireNodestConn        *bool  `yaml:"expire_nodest_conn"`
	ExpireQuiescentTemplate *bool  `yaml:"expire_quiescent_template"`
	ConnReuseMode           *int64 `yaml:"conn_reuse_mode"`
	// SloppyTCP and SloppySCTP let IPVS take a connection up from any
	// packet, not only its first: with mh behind ECMP, a flow moved to
	// another director keeps its real server even when the sync daemon
	// has not copied its entry there.
	SloppyTCP  *bool `yaml:"sloppy_tcp"`
	SloppySCTP *bool `yaml:"sloppy_sctp"`
}

// Listen holds the daemon's endpoints. A nil pointer takes the default; an
// empty string turns the endpoint off.
type Listen struct {
	Metrics *string `yaml:"metrics"`
	Control *string `yaml:"control"`
}

// MetricsAddr returns the metrics address, or "" when it is off.
func (l Listen) MetricsAddr() string {
	if l.Metrics == nil {
		return DefaultMetrics
	}
	return *l.Metrics
}

// ControlPath returns the control socket path, or "" when it is off.
func (l Listen) ControlPath() string {
	if l.Control == nil {
		return DefaultControl
	}
	return *l.Control
}

// VirtualService is one entry of virtual_services.
type VirtualService struct {
	Name           string       `yaml:"name"`
	VIP            string       `yaml:"vip"`
	Family         string       `yaml:"family"` // ipv4 | ipv6, for fwmark services without vip
	Protocol       string       `yaml:"protocol"`
	Port           *uint16      `yaml:"port"`
	Ports          []uint16     `yaml:"ports"`
	FWMark         *uint32      `yaml:"fwmark,hex"`
	Scheduler      string       `yaml:"scheduler"`
	SchedulerFlags []string     `yaml:"scheduler_flags"`
	Persistence    *Persistence `yaml:"persistence"`
	OnePacket      bool         `yaml:"one_packet"`
	Forwarding     string       `yaml:"forwarding"`
	BindVIP        bool         `yaml:"bind_vip"`
	RealServers    []RealServer `yaml:"real_servers"`

	ServiceInputs `yaml:",inline"` // health_check, sorry_server, quorum, feedback (config_inputs.go)
	// local_addresses and toa of full-NAT services (config_fullnat.go).
	FullNAT `yaml:",inline"`

	// Filled by validation.
	vip      netip.Addr
	family   uint16
	proto    ipvs.Protocol
	flags    uint32
	timeout  uint32
	netmask  uint32
	forward  ipvs.Forward
	explicit uint32 // explicit fwmark, 0 when none
}

// Persistence makes a client stick to one real server.
type Persistence struct {
	Timeout config.Duration `yaml:"timeout"`
	// Netmask groups clients: a dotted IPv4 mask, an IPv6 mask, or a
	// prefix length ("24", "/64").
	Netmask string `yaml:"netmask"`
	// Engine is a persistence engine (config_pe.go).
	Engine string `yaml:"engine"`
}

// RealServer is one backend of a virtual service.
type RealServer struct {
	Address        string  `yaml:"address"`
	Port           *uint16 `yaml:"port"`
	Weight         *int64  `yaml:"weight"`
	Forwarding     string  `yaml:"forwarding"`
	UpperThreshold uint32  `yaml:"upper_threshold"`
	LowerThreshold uint32  `yaml:"lower_threshold"`
	TunnelType     string  `yaml:"tunnel_type"` // ipip (default) | gue | gre
	TunnelPort     uint16  `yaml:"tunnel_port"` // gue only

	RealServerInputs `yaml:",inline"` // health_check (config_inputs.go)

	// Filled by validation.
	addr    netip.Addr
	forward ipvs.Forward
	tunType ipvs.TunnelType
}

// IsMarkService reports whether the service is a firewall-mark service
// (ports: or fwmark:).
func (v *VirtualService) IsMarkService() bool { return v.Ports != nil || v.FWMark != nil }

// LoadConfig reads path and the files it includes, decodes them strictly,
// fills defaults and validates them. Every problem is returned together
// as config.Errors.
func LoadConfig(path string) (*Config, *config.Doc, error) {
	return NewLoader(path).Load()
}

// ParseConfig is LoadConfig for data already read; name is used in
// positions and as the place relative include patterns start from.
func ParseConfig(name string, data []byte) (*Config, *config.Doc, error) {
	return NewLoader(name).load(data)
}

type validator struct {
	doc  *config.Doc
	errs config.Errors
	// The real servers of one service seen so far, by address and port
	// (see listedBefore).
	seenFor *VirtualService
	seen    map[ipvs.DestKey]int
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, v.doc.Errorf(path, format, args...))
}

// serviceID names a classic service for duplicate detection.
type serviceID struct {
	vip   netip.Addr
	proto ipvs.Protocol
	port  uint16
}

func (c *Config) validate(doc *config.Doc) error {
	v := &validator{doc: doc}
	d := &c.Director
	if !doc.Has("director.resync_interval") {
		d.ResyncInterval = config.Duration(DefaultResyncInterval)
	} else if d.ResyncInterval.D() < time.Second {
		v.errorf("director.resync_interval", "must be at least 1s, got %s", d.ResyncInterval)
	}
	if d.StateDir == "" {
		if doc.Has("director.state_dir") {
			v.errorf("director.state_dir", "must not be empty")
		}
		d.StateDir = DefaultStateDir
	} else if !strings.HasPrefix(d.StateDir, "/") {
		v.errorf("director.state_dir", "must be an absolute path, got %q", d.StateDir)
	}
	if d.NFTable == "" {
		d.NFTable = DefaultNFTable
	} else if !validName(d.NFTable) {
		v.errorf("director.nftables_table", "must be letters, digits, '_', '-' or '.', got %q", d.NFTable)
	}
	if d.VIPInterface == "" {
		d.VIPInterface = DefaultVIPInterface
	}
	v.timeouts(d.Timeouts)
	if m := d.Sysctls.ConnReuseMode; m != nil && (*m < 0 || *m > 3) {
		v.errorf("director.sysctls.conn_reuse_mode", "must be from 0 to 3, got %d", *m)
	}
	if a := c.Listen.MetricsAddr(); a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil {
			v.errorf("listen.metrics", "want host:port such as 127.0.0.1:9722, got %q", a)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			v.errorf("listen.metrics", "bad port in %q", a)
		}
	}
	if p := c.Listen.ControlPath(); p != "" && !strings.HasPrefix(p, "/") {
		v.errorf("listen.control", "must be an absolute path, got %q", p)
	}

	v.includes(c.Include)
	for i := range c.VirtualServices {
		v.service(&c.VirtualServices[i], config.Index("virtual_services", i))
	}
	v.fullNAT(c)
	v.validateAutoFWMark(&d.AutoFWMark, 0) // the number of ports: services is the claims' check
	v.ha(&c.HA)
	if len(c.Include) == 0 {
		// Without included files, every service is here: check them
		// against each other now. A Loader does it for the whole set.
		f := &serviceFile{path: doc.File, doc: doc, prefix: "virtual_services", rank: -1, services: c.VirtualServices}
		v.errs = append(v.errs, newClaims().check(d, nil, []*serviceFile{f})...)
	}
	return v.errs.Err()
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func (v *validator) service(vs *VirtualService, p string) {
	if vs.Name == "" {
		v.errorf(config.Join(p, "name"), "every virtual service needs a name (used in logs and metrics)")
	} else if !validName(vs.Name) {
		v.errorf(config.Join(p, "name"), "must be 1 to 64 letters, digits, '_', '-' or '.', got %q", vs.Name)
	}

	// Which kind of service.
	switch {
	case vs.FWMark != nil && vs.Port != nil:
		v.errorf(config.Join(p, "fwmark"), "fwmark and port exclude each other: a firewall-mark service matches packets by mark, not by port")
	case vs.FWMark != nil && vs.Ports != nil:
		v.errorf(config.Join(p, "fwmark"), "fwmark and ports exclude each other: ports: allocates its own mark")
	case vs.Ports != nil && vs.Port != nil:
		v.errorf(config.Join(p, "ports"), "port and ports exclude each other: use ports: [..] alone for several ports")
	case vs.FWMark == nil && vs.Ports == nil && vs.Port == nil:
		v.errorf(p, "set one of port, ports or fwmark")
	}
	if vs.FWMark != nil && *vs.FWMark == 0 {
		v.errorf(config.Join(p, "fwmark"), "must be from 1 to 4294967295")
	}
	if vs.Ports != nil {
		if len(vs.Ports) == 0 {
			v.errorf(config.Join(p, "ports"), "must list at least one port")
		}
		seen := map[uint16]bool{}
		for j, port := range vs.Ports {
			if seen[port] {
				v.errorf(config.Index(config.Join(p, "ports"), j), "port %d is listed twice", port)
			}
			seen[port] = true
		}
		if seen[0] && len(vs.Ports) > 1 {
			v.errorf(config.Join(p, "ports"), "port 0 means every port of the VIP and cannot be combined with other ports")
		}
	}

	// Address and family.
	if vs.VIP != "" {
		a, err := netip.ParseAddr(vs.VIP)
		switch {
		case err != nil || a.Zone() != "":
			v.errorf(config.Join(p, "vip"), "want an IPv4 or IPv6 address, got %q", vs.VIP)
		case a.IsUnspecified() || a.IsMulticast():
			v.errorf(config.Join(p, "vip"), "%s cannot be a virtual address", a)
		default:
			vs.vip = a.Unmap()
			vs.family = ipvs.FamilyOf(vs.vip)
		}
	} else if vs.FWMark == nil {
		v.errorf(config.Join(p, "vip"), "a service needs a vip (only fwmark services may omit it)")
	}
	switch strings.ToLower(vs.Family) {
	case "":
		if vs.family == 0 {
			vs.family = afInet
		}
	case "ipv4", "inet", "4":
		if vs.vip.IsValid() && !vs.vip.Is4() {
			v.errorf(config.Join(p, "family"), "family ipv4 does not match vip %s", vs.vip)
		}
		vs.family = afInet
	case "ipv6", "inet6", "6":
		if vs.vip.IsValid() && !vs.vip.Is6() {
			v.errorf(config.Join(p, "family"), "family ipv6 does not match vip %s", vs.vip)
		}
		vs.family = afInet6
	default:
		v.errorf(config.Join(p, "family"), "want ipv4 or ipv6, got %q", vs.Family)
	}
	if vs.BindVIP && !vs.vip.IsValid() {
		v.errorf(config.Join(p, "bind_vip"), "bind_vip needs a vip")
	}

	// Protocol.
	if vs.Protocol == "" {
		vs.Protocol = DefaultProtocol
	}
	proto, err := ipvs.ParseProtocol(vs.Protocol)
	if err != nil {
		v.errorf(config.Join(p, "protocol"), "unknown protocol %q (want tcp, udp or sctp)", vs.Protocol)
	}
	vs.proto = proto
	if vs.OnePacket && vs.FWMark == nil && vs.proto != ipvs.UDP && err == nil {
		v.errorf(config.Join(p, "one_packet"), "one-packet scheduling applies to udp only, this service is %s", vs.proto)
	}
	if vs.OnePacket {
		vs.flags |= ipvs.FlagOnePacket
	}

	// Scheduler.
	if vs.Scheduler == "" {
		vs.Scheduler = DefaultScheduler
	}
	if known := schedulers(); !slices.Contains(known, vs.Scheduler) {
		v.errorf(config.Join(p, "scheduler"), "unknown scheduler %q (valid: %s)", vs.Scheduler, strings.Join(known, " "))
	}
	for j, f := range vs.SchedulerFlags {
		fp := config.Index(config.Join(p, "scheduler_flags"), j)
		sched, what, ok := strings.Cut(f, "-")
		if !ok || (sched != "sh" && sched != "mh") || (what != "fallback" && what != "port") {
			v.errorf(fp, "unknown scheduler flag %q (valid: sh-fallback sh-port mh-fallback mh-port)", f)
			continue
		}
		if sched != vs.Scheduler {
			v.errorf(fp, "flag %q applies to the %s scheduler, this service uses %s", f, sched, vs.Scheduler)
			continue
		}
		if what == "fallback" {
			vs.flags |= ipvs.FlagSched1
		} else {
			vs.flags |= ipvs.FlagSched2
		}
	}

	// Persistence.
	if vs.family == afInet6 {
		vs.netmask = 128
	} else {
		vs.netmask = 0xffffffff
	}
	if ps := vs.Persistence; ps != nil {
		vs.flags |= ipvs.FlagPersistent
		tp := config.Join(p, "persistence")
		t := ps.Timeout.D()
		if !v.doc.Has(config.Join(tp, "timeout")) {
			t = DefaultPersistence
			ps.Timeout = config.Duration(t)
		}
		switch {
		case t < time.Second:
			v.errorf(config.Join(tp, "timeout"), "must be at least 1s, got %s", ps.Timeout)
		case t%time.Second != 0:
			v.errorf(config.Join(tp, "timeout"), "must be whole seconds, got %s", ps.Timeout)
		case t/time.Second > 1<<31:
			v.errorf(config.Join(tp, "timeout"), "is too long: %s", ps.Timeout)
		default:
			vs.timeout = uint32(t / time.Second)
		}
		if ps.Netmask != "" {
			m, err := parseNetmask(ps.Netmask, vs.family)
			if err != nil {
				v.errorf(config.Join(tp, "netmask"), "%v", err)
			} else {
				vs.netmask = m
			}
		}
	}

	v.persistenceEngine(vs, p)

	// Forwarding default for the real servers.
	if vs.Forwarding == "" {
		vs.Forwarding = DefaultForwarding
	}
	fwd, err := parseForwarding(vs.Forwarding)
	if err != nil {
		v.errorf(config.Join(p, "forwarding"), "unknown forwarding %q (want dr, nat, tun or fullnat)", vs.Forwarding)
	}
	vs.forward = fwd
	if vs.FWMark != nil {
		vs.explicit = *vs.FWMark
	}

	rsp := config.Join(p, "real_servers")
	for j := range vs.RealServers {
		rp := config.Index(rsp, j)
		rs := &vs.RealServers[j]
		v.realServer(vs, rs, rp)
		if prev := v.listedBefore(vs, j); prev >= 0 {
			v.errorf(rp, "real server %s is already listed at %s", ipvs.DestKey{Addr: rs.addr, Port: *rs.Port}, config.Index(rsp, prev))
		}
	}
	v.inputs(vs, p)
	v.fullNATService(vs, p)
}

// listedBefore returns the position of the first real server of vs
// before the j-th with the same address and port, or -1. A service has
// a few real servers: they are compared with each other; many go through
// a map, built once per service.
func (v *validator) listedBefore(vs *VirtualService, j int) int {
	rs := &vs.RealServers[j]
	if !rs.addr.IsValid() {
		return -1
	}
	k := ipvs.DestKey{Addr: rs.addr, Port: *rs.Port}
	if len(vs.RealServers) <= 32 {
		for i := range j {
			if o := &vs.RealServers[i]; o.addr == k.Addr && *o.Port == k.Port {
				return i
			}
		}
		return -1
	}
	if v.seenFor != vs {
		v.seenFor, v.seen = vs, make(map[ipvs.DestKey]int, len(vs.RealServers))
	}
	if i, ok := v.seen[k]; ok {
		return i
	}
	v.seen[k] = j
	return -1
}

func (v *validator) realServer(vs *VirtualService, rs *RealServer, rp string) {
	a, err := netip.ParseAddr(rs.Address)
	switch {
	case rs.Address == "":
		v.errorf(config.Join(rp, "address"), "a real server needs an address")
	case err != nil || a.Zone() != "":
		v.errorf(config.Join(rp, "address"), "want an IPv4 or IPv6 address, got %q", rs.Address)
	case a.IsUnspecified() || a.IsMulticast():
		v.errorf(config.Join(rp, "address"), "%s cannot be a real server", a)
	default:
		rs.addr = a.Unmap()
	}
	if rs.Forwarding == "" {
		rs.forward = vs.forward
	} else if f, err := parseForwarding(rs.Forwarding); err != nil {
		v.errorf(config.Join(rp, "forwarding"), "unknown forwarding %q (want dr, nat, tun or fullnat)", rs.Forwarding)
	} else {
		rs.forward = f
	}
	if err := mixedFamily(vs, rs); err != nil {
		v.errorf(config.Join(rp, "address"), "%v", err)
		rs.addr = netip.Addr{}
	}
	if rs.Weight == nil {
		w := int64(DefaultWeight)
		rs.Weight = &w
	} else if *rs.Weight < 0 || *rs.Weight > maxWeight {
		v.errorf(config.Join(rp, "weight"), "must be from 0 to %d, got %d", maxWeight, *rs.Weight)
	}
	if rs.UpperThreshold != 0 && rs.LowerThreshold > rs.UpperThreshold {
		v.errorf(config.Join(rp, "lower_threshold"), "must not exceed upper_threshold (%d), got %d", rs.UpperThreshold, rs.LowerThreshold)
	}

	// Ports: IPVS rewrites the port only when it rewrites the address (NAT).
	svcPort := uint16(0)
	if vs.Port != nil {
		svcPort = *vs.Port
	}
	if rs.Port == nil {
		port := svcPort
		rs.Port = &port
	} else if rs.forward != ipvs.Masq && *rs.Port != svcPort {
		if vs.IsMarkService() {
			v.errorf(config.Join(rp, "port"), "a %s real server of a firewall-mark service keeps the client's port: leave port out or set 0, got %d", rs.forward, *rs.Port)
		} else {
			v.errorf(config.Join(rp, "port"), "a %s real server must use the service port %d (only nat maps ports), got %d", rs.forward, svcPort, *rs.Port)
		}
	}

	// Tunnels.
	switch strings.ToLower(rs.TunnelType) {
	case "", "ipip":
		rs.tunType = ipvs.TunIPIP
	case "gue":
		rs.tunType = ipvs.TunGUE
		if rs.TunnelPort == 0 {
			v.errorf(config.Join(rp, "tunnel_port"), "a gue tunnel needs tunnel_port (the real server's FOU/GUE port)")
		}
	case "gre":
		rs.tunType = ipvs.TunGRE
	default:
		v.errorf(config.Join(rp, "tunnel_type"), "want ipip, gue or gre, got %q", rs.TunnelType)
	}
	if rs.TunnelType != "" && rs.forward != ipvs.Tunnel {
		v.errorf(config.Join(rp, "tunnel_type"), "tunnel_type applies to tun real servers only, this one is %s", rs.forward)
	}
	if rs.TunnelPort != 0 && rs.tunType != ipvs.TunGUE {
		v.errorf(config.Join(rp, "tunnel_port"), "tunnel_port applies to gue tunnels only")
	}
}

func famName(f uint16) string {
	if f == afInet6 {
		return "IPv6"
	}
	return "IPv4"
}

// parseNetmask parses a persistence netmask into the kernel's form: an
// IPv4 mask in host order, or an IPv6 prefix length.
func parseNetmask(s string, family uint16) (uint32, error) {
	t := strings.TrimPrefix(s, "/")
	if n, err := strconv.Atoi(t); err == nil {
		max := 32
		if family == afInet6 {
			max = 128
		}
		if n < 1 || n > max {
			return 0, fmt.Errorf("prefix length must be from 1 to %d, got %q", max, s)
		}
		if family == afInet6 {
			return uint32(n), nil
		}
		return ^uint32(0) << (32 - n), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return 0, fmt.Errorf("want a netmask such as 255.255.255.0 or a prefix length such as 24, got %q", s)
	}
	if ipvs.FamilyOf(a) != family {
		return 0, fmt.Errorf("netmask %s does not match the %s service", s, famName(family))
	}
	b := a.AsSlice()
	ones, seenZero := 0, false
	for _, x := range b {
		for bit := 7; bit >= 0; bit-- {
			if x&(1<<bit) != 0 {
				if seenZero {
					return 0, fmt.Errorf("netmask %s is not contiguous (ones then zeros)", s)
				}
				ones++
			} else {
				seenZero = true
			}
		}
	}
	if ones == 0 {
		return 0, fmt.Errorf("netmask %s would group every client together", s)
	}
	if family == afInet6 {
		return uint32(ones), nil
	}
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}

// Address families as IPVS numbers them.
const (
	afInet  = 2
	afInet6 = 10
)
