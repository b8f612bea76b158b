package rsagent

import (
	"net/netip"

	"github.com/lvs-node/lvs-node/internal/hostnet"
	"slices"
	"strconv"
)

type kv struct{ key, value string }

func (s kv) String() string { return "sysctl -w " + s.key + "=" + s.value }

// desired is the complete state a configuration asks for.
type desired struct {
	links    []Link
	ups      []LinkUp
	sysAll   []kv // on all: applied before anything else
	sysDev   []kv // per device: applied once the devices exist
	addrs    []Addr
	routes   []Route
	devOfVIP map[netip.Addr]string
	tunDevs  []tunDev      // tunnel devices and their modules (tunnel.go)
	fous     []hostnet.Fou // FOU/GUE ports
	rpDevs   []string      // tunnel devices that need rp_filter 0
	notes    []string      // MTU notes of the tunnels
}

func confKey(dev, name string) string { return "net/ipv4/conf/" + dev + "/" + name }

// want computes the desired state of cfg. It is a pure function.
func want(cfg *Config) desired {
	rs := cfg.Realserver
	d := desired{devOfVIP: map[netip.Addr]string{}}
	arpDevs := []string{}
	addDev := func(dev string) {
		if !slices.Contains(arpDevs, dev) {
			arpDevs = append(arpDevs, dev)
		}
	}
	arp4 := false
	for _, v := range rs.VIPs {
		var dev string
		switch {
		case v.Mode == ModeDR && v.Interface == InterfaceDummy:
			dev = rs.DummyInterface
			if !slices.Contains(d.links, Link{Name: dev, Kind: "dummy"}) {
				d.links = append(d.links, Link{Name: dev, Kind: "dummy"})
				d.ups = append(d.ups, LinkUp{Name: dev})
			}
		case v.Mode == ModeDR:
			dev = "lo"
		case v.Mode == ModeTUN:
			dev = d.tunnel(v)
		case v.Mode == ModeNAT:
			for _, p := range v.Prefixes {
				r := Route{Dst: p, Gateway: v.GatewayIP}
				if !slices.Contains(d.routes, r) {
					d.routes = append(d.routes, r)
				}
			}
			continue
		}
		d.devOfVIP[v.Addr] = dev
		a := Addr{Dev: dev, Prefix: netip.PrefixFrom(v.Addr, v.Addr.BitLen())}
		if dev == "lo" && v.Addr.Is4() {
			a.Label = LoLabel
		}
		d.addrs = append(d.addrs, a)
		if v.Addr.Is4() {
			arp4 = true
			addDev(dev)
		}
	}
	ign, ann := strconv.Itoa(*rs.ARP.Ignore), strconv.Itoa(*rs.ARP.Announce)
	if arp4 {
		for _, dev := range rs.ARP.Interfaces {
			addDev(dev)
		}
		d.sysAll = append(d.sysAll, kv{confKey("all", "arp_ignore"), ign}, kv{confKey("all", "arp_announce"), ann})
		if !slices.Contains(arpDevs, "lo") {
			arpDevs = append([]string{"lo"}, arpDevs...)
		}
	}
	if len(d.rpDevs) > 0 {
		d.sysAll = append(d.sysAll, kv{confKey("all", "rp_filter"), "0"})
	}
	for _, dev := range arpDevs {
		d.sysDev = append(d.sysDev, kv{confKey(dev, "arp_ignore"), ign}, kv{confKey(dev, "arp_announce"), ann})
		if slices.Contains(d.rpDevs, dev) {
			d.sysDev = append(d.sysDev, kv{confKey(dev, "rp_filter"), "0"})
		}
	}
	return d
}
