package rsagent

import (
	"fmt"
	"slices"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/hostnet"
)

// Tunnels a tun VIP arrives through (realserver.vips[].tunnel): the
// director's IPVS wraps the client's packet, and the real server must
// unwrap it on a device that holds the VIP.
const (
	TunnelIPIP   = "ipip"   // IP in IPv4 (IPVS --tun-type ipip): tunl0, or sit0 for an IPv6 VIP
	TunnelGUE    = "gue"    // IP in UDP/GUE over IPv4 (--tun-type gue): a FOU port, then as ipip
	TunnelGRE    = "gre"    // IP in keyless GRE over IPv4 (--tun-type gre): gre0
	TunnelIP6Tnl = "ip6tnl" // IP in IPv6 (an IPv6 real server of ipip): an ip6tnl device
)

// IP6TnlDevice is the ip6tnl device lvs-node creates (external mode: it
// takes IPv4 and IPv6 packets tunnelled in IPv6 from any director).
const IP6TnlDevice = "lvs-ip6tnl"

// tunDev is the device a tunnel needs, the module that provides it and
// whether lvs-node creates it (otherwise it is the module's fallback
// device, which is brought up).
type tunDev struct {
	dev, module string
	create      bool
}

// overhead is the bytes a tunnel adds to every packet the director
// forwards (outer header and encapsulation).
func overhead(tunnel string) int {
	switch tunnel {
	case TunnelGUE:
		return 20 + 8 + 4
	case TunnelGRE:
		return 20 + 4
	case TunnelIP6Tnl:
		return 40 + 8 // with the encapsulation limit option
	}
	return 20
}

// tunnelDev returns the device v arrives on.
func tunnelDev(v VIP) tunDev {
	switch v.Tunnel {
	case TunnelGRE:
		return tunDev{dev: "gre0", module: "ip_gre"}
	case TunnelIP6Tnl:
		return tunDev{dev: IP6TnlDevice, module: "ip6_tunnel", create: true}
	}
	if v.Addr.Is6() {
		return tunDev{dev: "sit0", module: "sit"}
	}
	return tunDev{dev: tunl0, module: "ipip"}
}

// tunnel adds to d what the tun VIP v needs and returns its device.
func (d *desired) tunnel(v VIP) string {
	t := tunnelDev(v)
	if !slices.Contains(d.tunDevs, t) {
		d.tunDevs = append(d.tunDevs, t)
	}
	if t.create {
		l := Link{Name: t.dev, Kind: hostnet.KindIP6Tnl}
		if !slices.Contains(d.links, l) {
			d.links = append(d.links, l)
		}
	}
	if !slices.Contains(d.ups, LinkUp{Name: t.dev}) {
		d.ups = append(d.ups, LinkUp{Name: t.dev})
	}
	if v.Tunnel == TunnelGUE {
		f := hostnet.Fou{Port: v.TunnelPort, Family: 4}
		if !slices.Contains(d.fous, f) {
			d.fous = append(d.fous, f)
		}
	}
	if v.Addr.Is4() && !slices.Contains(d.rpDevs, t.dev) {
		// Decapsulated packets come from clients routed elsewhere:
		// strict reverse-path filtering would drop them.
		d.rpDevs = append(d.rpDevs, t.dev)
	}
	tun := v.Tunnel
	if tun == "" {
		tun = TunnelIPIP
	}
	d.notes = append(d.notes, fmt.Sprintf("VIP %s arrives by %s on %s: the director adds %d bytes to each packet; "+
		"keep the path between director and real server %d bytes above the clients' MTU, or make sure ICMP "+
		"\"fragmentation needed\" reaches the clients (path MTU discovery)", v.Addr, tun, t.dev, overhead(tun), overhead(tun)))
	return t.dev
}

// HasFou reports whether the FOU port f is present.
func hasFou(s *Snapshot, f hostnet.Fou) bool { return slices.Contains(s.Fous, f) }

// validateTunnel checks tunnel and tunnel_port of the VIP at p.
func validateTunnel(v *VIP, p string, doc *config.Doc, add func(*config.Error)) {
	key := func(k string) string { return config.Join(p, k) }
	if v.Mode != ModeTUN {
		if v.Tunnel != "" {
			add(doc.Errorf(key("tunnel"), "tunnel applies to tun VIPs only"))
		}
		if v.TunnelPort != 0 {
			add(doc.Errorf(key("tunnel_port"), "tunnel_port applies to gue tunnels only"))
		}
		return
	}
	switch v.Tunnel {
	case "", TunnelIPIP, TunnelGRE, TunnelIP6Tnl:
		if v.TunnelPort != 0 {
			add(doc.Errorf(key("tunnel_port"), "tunnel_port applies to gue tunnels only"))
		}
	case TunnelGUE:
		if v.TunnelPort == 0 {
			add(doc.Errorf(key("tunnel"), "a gue tunnel needs tunnel_port: the UDP port the director sends to (its --tun-port)"))
		}
	default:
		add(doc.Errorf(key("tunnel"), "want ipip, gue, gre or ip6tnl, got %q", v.Tunnel))
	}
}

// tunnelPreflight loads the module of every tunnel device d needs that is
// missing (and fou for GUE ports), and reports a device that is still
// missing at the first VIP that uses it. It returns the snapshot, read
// again when a module was loaded.
func (a *Agent) tunnelPreflight(cfg *Config, doc *config.Doc, d desired, snap *Snapshot) (*Snapshot, config.Errors, error) {
	var errs config.Errors
	var mods []string
	for _, t := range d.tunDevs {
		if _, ok := snap.Link(t.dev); !ok && !slices.Contains(mods, t.module) {
			mods = append(mods, t.module)
		}
	}
	if len(d.fous) > 0 && !slices.ContainsFunc(d.fous, func(f hostnet.Fou) bool { return hasFou(snap, f) }) {
		mods = append(mods, "fou")
	}
	if len(mods) == 0 {
		return snap, nil, nil
	}
	loadErr := map[string]error{}
	for _, m := range mods {
		loadErr[m] = a.k.LoadModule(m)
	}
	s, err := a.k.Snapshot()
	if err != nil {
		return nil, nil, err
	}
	snap = s
	for _, t := range d.tunDevs {
		if _, ok := snap.Link(t.dev); ok || t.create {
			continue
		}
		msg := fmt.Sprintf("%s is unavailable: %s is missing", t.module, t.dev)
		if e := loadErr[t.module]; e != nil {
			msg += fmt.Sprintf(" and %v", e)
		}
		for i, v := range cfg.Realserver.VIPs {
			if v.Mode == ModeTUN && tunnelDev(v) == t {
				k := "mode"
				if v.Tunnel != "" {
					k = "tunnel"
				}
				errs = append(errs, doc.Errorf(config.Join(config.Index("realserver.vips", i), k), "%s", msg))
				break
			}
		}
	}
	if e := loadErr["fou"]; e != nil {
		for i, v := range cfg.Realserver.VIPs {
			if v.Mode == ModeTUN && v.Tunnel == TunnelGUE {
				errs = append(errs, doc.Errorf(config.Join(config.Index("realserver.vips", i), "tunnel"), "gue needs the fou module: %v", e))
				break
			}
		}
	}
	return snap, errs, nil
}
