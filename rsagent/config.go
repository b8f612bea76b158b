package rsagent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/lvs-node/lvs-node/internal/config"
)

// Defaults.
const (
	DefaultStateDir       = "/var/lib/lvs-node"
	DefaultWatchInterval  = 2 * time.Second
	DefaultDummyInterface = "lvs0"
	DefaultARPIgnore      = 1
	DefaultARPAnnounce    = 2
	// LoLabel is the label of IPv4 VIPs on lo.
	LoLabel = "lo:lvs"
)

// DefaultControl is the control socket when listen.control is not given;
// its directory is the real-server unit's RuntimeDirectory, apart from the
// director's, so that either unit can stop without removing the other's
// socket.
const DefaultControl = "/run/lvs-node/realserver/control.sock"

// Forwarding methods.
const (
	ModeDR  = "dr"
	ModeTUN = "tun"
	ModeNAT = "nat"
)

// Where a DR VIP is bound.
const (
	InterfaceLo    = "lo"
	InterfaceDummy = "dummy"
)

// Config is a real-server configuration file.
type Config struct {
	Realserver *Realserver `yaml:"realserver"`
	Listen     Listen      `yaml:"listen"`
}

// Realserver is the realserver section.
type Realserver struct {
	StateDir string `yaml:"state_dir"`
	VIPs     []VIP  `yaml:"vips"`
	ARP      ARP    `yaml:"arp"`
	// RestoreOnExit makes the daemon restore everything when it stops.
	// Default false: stopping or restarting the daemon (a package
	// upgrade) leaves the host serving; "lvs-node realserver down" and
	// package removal restore it. With true, every restart takes the VIPs
	// away while the director still sends to this host.
	RestoreOnExit *bool `yaml:"restore_on_exit"`
	// WatchInterval is how often the daemon re-reads the sysctls (netlink
	// changes are seen at once). Default 2s.
	WatchInterval config.Duration `yaml:"watch_interval"`
	// DummyInterface names the dummy interface for VIPs with
	// interface: dummy. Default lvs0.
	DummyInterface string `yaml:"dummy_interface"`
	// TOA reveals client addresses behind full-NAT balancers (toa.go).
	TOA *TOA `yaml:"toa"`
	// Reporting holds agent: and load: (reporting_config.go).
	Reporting `yaml:",inline"`
}

// VIP is one virtual address served by this real server.
type VIP struct {
	Address string `yaml:"address"`
	Mode    string `yaml:"mode"`
	// Interface is where a DR VIP is bound: lo (default) or dummy.
	Interface string `yaml:"interface"`
	// Gateway is the director address NAT replies go through.
	Gateway string `yaml:"gateway"`
	// Routes are the prefixes sent through Gateway (NAT); empty means the
	// default route.
	Routes []string `yaml:"routes"`
	// Tunnel is how a tun VIP arrives: ipip (default), gue, gre or
	// ip6tnl; TunnelPort is the FOU/GUE port of gue (tunnel.go).
	Tunnel     string `yaml:"tunnel"`
	TunnelPort uint16 `yaml:"tunnel_port"`

	// Parsed values, filled by LoadConfig.
	Addr      netip.Addr     `yaml:"-"`
	GatewayIP netip.Addr     `yaml:"-"`
	Prefixes  []netip.Prefix `yaml:"-"`
}

// ARP holds the ARP sysctl values.
type ARP struct {
	Ignore   *int `yaml:"ignore"`
	Announce *int `yaml:"announce"`
	// Interfaces are further devices to set the ARP sysctls on, such as
	// the interfaces that face the clients (eth0.100). They must exist.
	Interfaces []string `yaml:"interfaces"`
}

// Listen holds the daemon's listening addresses.
type Listen struct {
	// Metrics is a host:port for read-only Prometheus metrics; empty
	// means none.
	Metrics string `yaml:"metrics"`
	// Control is the path of the daemon's control socket (mode 0600):
	// status reports what is applied, reload makes the daemon re-read its
	// file. Default DefaultControl; an empty string means none.
	Control string `yaml:"control"`
}

// RestoreOnExitValue returns restore_on_exit with its default (false).
func (r *Realserver) RestoreOnExitValue() bool { return r.RestoreOnExit != nil && *r.RestoreOnExit }

// LoadConfig reads, decodes strictly, fills defaults and validates a
// real-server configuration. All problems are returned together as
// config.Errors.
func LoadConfig(path string) (*Config, *config.Doc, error) {
	var c Config
	doc, err := config.LoadValid(path, &c, func(doc *config.Doc) error { return Validate(&c, doc) })
	if err != nil {
		return nil, doc, err
	}
	return &c, doc, nil
}

// Validate fills defaults and checks c without looking at the host.
func Validate(c *Config, doc *config.Doc) error {
	var errs config.Errors
	add := func(e *config.Error) { errs = append(errs, e) }
	if c.Realserver == nil {
		add(doc.Errorf("realserver", "the realserver section is missing"))
		return errs.Err()
	}
	rs := c.Realserver
	if rs.StateDir == "" {
		rs.StateDir = DefaultStateDir
	} else if !filepath.IsAbs(rs.StateDir) {
		add(doc.Errorf("realserver.state_dir", "want an absolute path, got %q", rs.StateDir))
	}
	if !doc.Has("realserver.watch_interval") {
		rs.WatchInterval = config.Duration(DefaultWatchInterval)
	} else if rs.WatchInterval.D() < 100*time.Millisecond {
		add(doc.Errorf("realserver.watch_interval", "want at least 100ms, got %s", rs.WatchInterval))
	}
	if rs.DummyInterface == "" {
		rs.DummyInterface = DefaultDummyInterface
	} else if err := checkIfName(rs.DummyInterface); err != nil {
		add(doc.Errorf("realserver.dummy_interface", "%v", err))
	} else if rs.DummyInterface == "lo" || rs.DummyInterface == tunl0 {
		add(doc.Errorf("realserver.dummy_interface", "%q is not a dummy interface name lvs-node may own", rs.DummyInterface))
	}
	if rs.ARP.Ignore == nil {
		v := DefaultARPIgnore
		rs.ARP.Ignore = &v
	} else if v := *rs.ARP.Ignore; !(v >= 0 && v <= 3 || v == 8) {
		add(doc.Errorf("realserver.arp.ignore", "want 0, 1, 2, 3 or 8 (see arp_ignore in ip-sysctl.txt), got %d", v))
	}
	if rs.ARP.Announce == nil {
		v := DefaultARPAnnounce
		rs.ARP.Announce = &v
	} else if v := *rs.ARP.Announce; v < 0 || v > 2 {
		add(doc.Errorf("realserver.arp.announce", "want 0, 1 or 2, got %d", v))
	}
	for i, name := range rs.ARP.Interfaces {
		if err := checkIfName(name); err != nil {
			add(doc.Errorf(config.Index("realserver.arp.interfaces", i), "%v", err))
		}
	}
	validateTOA(rs, doc, add)
	if len(rs.VIPs) == 0 && (rs.TOA == nil || !rs.TOA.Enabled) {
		add(doc.Errorf("realserver.vips", "at least one VIP is needed (or toa, for a full-NAT real server)"))
	}
	seen := map[netip.Addr]int{}
	routeVia := map[netip.Prefix]netip.Addr{}
	for i := range rs.VIPs {
		v := &rs.VIPs[i]
		p := config.Index("realserver.vips", i)
		key := func(k string) string { return config.Join(p, k) }
		switch v.Mode {
		case ModeDR, ModeTUN, ModeNAT:
		case "":
			add(doc.Errorf(key("mode"), "mode is required: dr, tun or nat"))
		default:
			add(doc.Errorf(key("mode"), "want dr, tun or nat, got %q", v.Mode))
		}
		a, err := netip.ParseAddr(v.Address)
		switch {
		case v.Address == "":
			add(doc.Errorf(key("address"), "address is required"))
		case err != nil || a.Zone() != "":
			add(doc.Errorf(key("address"), "want an IPv4 or IPv6 address without prefix length, got %q", v.Address))
		case !a.IsGlobalUnicast() && !a.IsPrivate():
			add(doc.Errorf(key("address"), "%s is not a unicast address a service can use", a))
		default:
			a = a.Unmap()
			v.Addr = a
			if j, dup := seen[a]; dup {
				prev := rs.VIPs[j]
				if prev.Mode != v.Mode {
					add(doc.Errorf(key("address"), "VIP %s is already listed at %s with mode %s; one address has one mode",
						a, doc.Pos(config.Index("realserver.vips", j)), prev.Mode))
				} else {
					add(doc.Errorf(key("address"), "VIP %s is listed twice (also at %s)", a, doc.Pos(config.Index("realserver.vips", j))))
				}
			} else {
				seen[a] = i
			}
		}
		if v.Interface != "" && v.Mode != ModeDR {
			add(doc.Errorf(key("interface"), "interface applies to dr VIPs only"))
		} else if v.Mode == ModeDR {
			switch v.Interface {
			case "":
				v.Interface = InterfaceLo
			case InterfaceLo, InterfaceDummy:
			default:
				add(doc.Errorf(key("interface"), "want lo or dummy, got %q", v.Interface))
			}
		}
		validateTunnel(v, p, doc, add)
		if v.Mode != ModeNAT {
			if v.Gateway != "" {
				add(doc.Errorf(key("gateway"), "gateway applies to nat VIPs only"))
			}
			if len(v.Routes) > 0 {
				add(doc.Errorf(key("routes"), "routes apply to nat VIPs only"))
			}
			continue
		}
		if v.Gateway == "" {
			add(doc.Errorf(key("gateway"), "a nat VIP needs gateway: the director address replies go through"))
			continue
		}
		gw, err := netip.ParseAddr(v.Gateway)
		if err != nil || gw.Zone() != "" || !gw.IsGlobalUnicast() && !gw.IsPrivate() {
			add(doc.Errorf(key("gateway"), "want a unicast IPv4 or IPv6 address, got %q", v.Gateway))
			continue
		}
		gw = gw.Unmap()
		if v.Addr.IsValid() && gw.Is4() != v.Addr.Is4() {
			add(doc.Errorf(key("gateway"), "gateway %s and VIP %s are of different address families", gw, v.Addr))
			continue
		}
		v.GatewayIP = gw
		if len(v.Routes) == 0 {
			v.Prefixes = []netip.Prefix{netip.PrefixFrom(netip.IPv4Unspecified(), 0)}
			if gw.Is6() {
				v.Prefixes = []netip.Prefix{netip.PrefixFrom(netip.IPv6Unspecified(), 0)}
			}
		}
		for j, r := range v.Routes {
			rp := config.Index(key("routes"), j)
			pfx, err := netip.ParsePrefix(r)
			if err != nil {
				add(doc.Errorf(rp, "want a prefix such as 192.0.2.0/24, got %q", r))
				continue
			}
			if pfx != pfx.Masked() {
				add(doc.Errorf(rp, "%s has host bits set; did you mean %s?", pfx, pfx.Masked()))
				continue
			}
			if pfx.Addr().Is4() != gw.Is4() {
				add(doc.Errorf(rp, "prefix %s and gateway %s are of different address families", pfx, gw))
				continue
			}
			v.Prefixes = append(v.Prefixes, pfx)
		}
		for _, pfx := range v.Prefixes {
			if other, ok := routeVia[pfx]; ok && other != gw {
				add(doc.Errorf(key("gateway"), "route %s is already sent via %s by another nat VIP", pfx, other))
			}
			routeVia[pfx] = gw
		}
	}
	errs = append(errs, validateReporting(rs, doc)...)
	if c.Listen.Metrics != "" {
		if _, _, err := net.SplitHostPort(c.Listen.Metrics); err != nil {
			add(doc.Errorf("listen.metrics", "want host:port such as 127.0.0.1:9723, got %q", c.Listen.Metrics))
		}
	}
	if !doc.Has("listen.control") {
		c.Listen.Control = DefaultControl
	} else if c.Listen.Control != "" && !filepath.IsAbs(c.Listen.Control) {
		add(doc.Errorf("listen.control", "want an absolute path, got %q", c.Listen.Control))
	}
	return errs.Err()
}

var errIfName = errors.New("bad interface name")

func checkIfName(name string) error {
	if len(name) == 0 || len(name) > 15 {
		return fmt.Errorf("%w %q: want 1 to 15 characters", errIfName, name)
	}
	for _, r := range name {
		if r <= ' ' || r == '/' || r == ':' || r > '~' {
			return fmt.Errorf("%w %q: no spaces, slashes or colons", errIfName, name)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w %q", errIfName, name)
	}
	return nil
}
