package director

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// MarkRule asks the firewall to mark packets to VIP on one of Ports (0:
// every port) of Protocol with Mark, so that the firewall-mark service
// Mark balances them. Only the bits of Mask are set (the packet's other
// bits are kept); IPVS matches the whole mark, so those other bits must be
// clear for the service to match.
type MarkRule struct {
	Name     string
	VIP      netip.Addr
	Protocol ipvs.Protocol
	Ports    []uint16
	Mark     uint32
	Mask     uint32
}

// Plan is what a Config asks of the kernel.
type Plan struct {
	Table *ipvs.Table
	Marks []MarkRule
	Names map[ipvs.ServiceKey]string // service key (normalised) -> virtual service name
	VIPs  []netip.Addr               // addresses to bind on the VIP interface
}

// Desired builds the IPVS table and mark rules that cfg asks for, with the
// effective weight of every real server given its inputs (in may be nil:
// see EffectiveWeight). marks gives the firewall mark of every ports:
// service by name (see AllocateMarks). The table has one entry per
// virtual service, in the file's order.
func Desired(cfg *Config, marks map[string]uint32, in *Inputs) (*Plan, error) {
	p := &Plan{Table: &ipvs.Table{Services: make([]ipvs.ServiceEntry, 0, len(cfg.VirtualServices))}, Names: map[ipvs.ServiceKey]string{}}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		svc := ipvs.Service{
			ServiceKey: ipvs.ServiceKey{Family: vs.family},
			Scheduler:  vs.Scheduler,
			Flags:      vs.flags,
			Timeout:    vs.timeout,
			Netmask:    vs.netmask,
		}
		if vs.Persistence != nil {
			svc.PE = vs.Persistence.Engine
		}
		switch {
		case vs.FWMark != nil:
			svc.FWMark = *vs.FWMark
		case vs.Ports != nil:
			m, ok := marks[vs.Name]
			if !ok || m == 0 {
				return nil, fmt.Errorf("service %s: no firewall mark allocated", vs.Name)
			}
			svc.FWMark = m
			p.Marks = append(p.Marks, MarkRule{Name: vs.Name, VIP: vs.vip, Protocol: vs.proto, Ports: slices.Clone(vs.Ports), Mark: m, Mask: cfg.Director.AutoFWMark.Mask})
		default:
			svc.Protocol = vs.proto
			svc.Addr = vs.vip
			svc.Port = *vs.Port
		}
		svc.ServiceKey = ipvs.NormKey(svc.ServiceKey)
		if vs.BindVIP && !slices.Contains(p.VIPs, vs.vip) {
			p.VIPs = append(p.VIPs, vs.vip)
		}
		p.Table.Services = append(p.Table.Services, ipvs.ServiceEntry{Service: svc, Dests: vs.dests(in)})
		p.Names[svc.ServiceKey] = vs.Name
	}
	return p, nil
}

// dests builds the real servers of vs as the kernel should hold them,
// with their effective weights given in (nil: configured weights), and
// the sorry server while it is needed (see weights).
func (vs *VirtualService) dests(in *Inputs) []ipvs.DestEntry {
	out := make([]ipvs.DestEntry, 0, len(vs.RealServers)+1)
	w := vs.weights(in)
	for j := range vs.RealServers {
		rs := &vs.RealServers[j]
		d := ipvs.Destination{
			DestKey:        ipvs.DestKey{Addr: rs.addr, Port: *rs.Port},
			Forward:        rs.forward,
			Weight:         int32(*rs.Weight),
			UpperThreshold: rs.UpperThreshold,
			LowerThreshold: rs.LowerThreshold,
		}
		if rs.forward == ipvs.Tunnel {
			d.TunType = rs.tunType
			d.TunPort = rs.TunnelPort
		}
		if w.servers != nil {
			e := w.servers[j]
			if !e.Present {
				continue
			}
			d.Weight = e.Weight
		}
		out = append(out, ipvs.DestEntry{Destination: d})
	}
	if w.sorry {
		out = append(out, ipvs.DestEntry{Destination: *vs.sorry})
	}
	return out
}

// ref names the j-th real server of vs.
func (vs *VirtualService) ref(j int) ServerRef {
	rs := &vs.RealServers[j]
	return ServerRef{Service: vs.Name, Addr: rs.addr, Port: *rs.Port}
}

// UsesNAT reports whether any real server is forwarded by NAT, per family.
func (c *Config) UsesNAT() (v4, v6 bool) {
	for i := range c.VirtualServices {
		vs := &c.VirtualServices[i]
		if usesNAT(vs) {
			if vs.family == afInet6 {
				v6 = true
			} else {
				v4 = true
			}
		}
	}
	return v4, v6
}
