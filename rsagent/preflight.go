package rsagent

import (
	"github.com/lvs-node/lvs-node/internal/config"
)

// preflight checks what needs the live host, before any change. It may
// load the tunnel modules (ipip, sit, ip_gre, ip6_tunnel, fou). It
// returns the (possibly refreshed) snapshot.
func (a *Agent) preflight(cfg *Config, doc *config.Doc, d desired, snap *Snapshot) (*Snapshot, error) {
	var errs config.Errors
	rs := cfg.Realserver
	snap, tunErrs, err := a.tunnelPreflight(cfg, doc, d, snap)
	if err != nil {
		return nil, err
	}
	errs = append(errs, tunErrs...)
	for i, name := range rs.ARP.Interfaces {
		if _, ok := snap.Link(name); !ok {
			errs = append(errs, doc.Errorf(config.Index("realserver.arp.interfaces", i), "this host has no interface %s", name))
		}
	}
	for _, l := range d.links {
		if got, ok := snap.Link(l.Name); ok && got.Kind != l.Kind {
			errs = append(errs, doc.Errorf("realserver.dummy_interface",
				"interface %s exists and is of type %s, not %s", l.Name, got.Kind, l.Kind))
		}
	}
	for i, v := range rs.VIPs {
		if !v.Addr.IsValid() {
			continue
		}
		p := config.Index("realserver.vips", i)
		dev := d.devOfVIP[v.Addr] // "" for nat
		for _, h := range snap.Addrs {
			if h.Prefix.Addr() != v.Addr || h.Dev == dev || a.recorded(h) {
				continue
			}
			if v.Mode == ModeNAT {
				errs = append(errs, doc.Errorf(config.Join(p, "address"),
					"nat VIP %s is an address of this host (on %s); it belongs on the director", v.Addr, h.Dev))
			} else {
				errs = append(errs, doc.Errorf(config.Join(p, "address"),
					"VIP %s is already an address of this host on %s; a %s VIP must be on %s only", v.Addr, h.Dev, v.Mode, dev))
			}
			break
		}
		if v.Mode == ModeNAT && v.GatewayIP.IsValid() && !snap.Connected(v.GatewayIP) {
			errs = append(errs, doc.Errorf(config.Join(p, "gateway"),
				"gateway %s is not on a connected network of this host", v.GatewayIP))
		}
	}
	return snap, errs.Err()
}

func (a *Agent) recorded(x Addr) bool { return a.led.Rec.OwnsAddr(x) }
