package director

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// MarkRule asks the firewall to mark packets to VIP on one of Ports (0:
// every port) of Protocol with Mark, so that the firewall-mark service
// Mark balances them.
type MarkRule struct {
	Name     string
	VIP      netip.Addr
	Protocol ipvs.Protocol
	Ports    []uint16
	Mark     uint32
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
			p.Marks = append(p.Marks, MarkRule{Name: vs.Name, VIP: vs.vip, Protocol: vs.proto, Ports: slices.Clone(vs.Ports), Mark: m})
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
// with their effective weights given in (nil: configured weights).
func (vs *VirtualService) dests(in *Inputs) []ipvs.DestEntry {
	out := make([]ipvs.DestEntry, 0, len(vs.RealServers))
	rule := vs.rule()
	noInputs := in.empty() && !rule.Checked
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
		if !noInputs {
			e := EffectiveWeight(d.Weight, in.Of(vs.ref(j)), rule)
			if !e.Present {
				continue
			}
			d.Weight = e.Weight
		}
		out = append(out, ipvs.DestEntry{Destination: d})
	}
	return out
}

// ref names the j-th real server of vs.
func (vs *VirtualService) ref(j int) ServerRef {
	rs := &vs.RealServers[j]
	return ServerRef{Service: vs.Name, Addr: rs.addr, Port: *rs.Port}
}

// rule is what vs says about effective weights.
func (vs *VirtualService) rule() WeightRule {
	return WeightRule{OnFailure: Quiesce, MaxWeight: maxWeight}
}

// UsesNAT reports whether any real server is forwarded by NAT, per family.
func (c *Config) UsesNAT() (v4, v6 bool) {
	for i := range c.VirtualServices {
		vs := &c.VirtualServices[i]
		for j := range vs.RealServers {
			if vs.RealServers[j].forward == ipvs.Masq {
				if vs.family == afInet6 {
					v6 = true
				} else {
					v4 = true
				}
			}
		}
	}
	return v4, v6
}

// AllocateMarks gives every ports: service of cfg a firewall mark from the
// auto_fwmark range. A service keeps the mark recorded for its name in
// prev while that mark is still free; marks named by fwmark: services
// and those in taken (marks of services lvs-node does not own) are never
// handed out.
func AllocateMarks(cfg *Config, prev map[string]uint32, taken map[uint32]bool) (map[string]uint32, error) {
	used := map[uint32]bool{}
	for m := range taken {
		used[m] = true
	}
	for _, vs := range cfg.VirtualServices {
		if vs.FWMark != nil {
			used[*vs.FWMark] = true
		}
	}
	r := cfg.Director.AutoFWMark
	out := map[string]uint32{}
	var need []string
	for _, vs := range cfg.VirtualServices {
		if vs.Ports == nil {
			continue
		}
		if m, ok := prev[vs.Name]; ok && m >= r.First && m <= r.Last && !used[m] {
			out[vs.Name] = m
			used[m] = true
			continue
		}
		need = append(need, vs.Name)
	}
	next := uint64(r.First)
	for _, name := range need {
		for next <= uint64(r.Last) && used[uint32(next)] {
			next++
		}
		if next > uint64(r.Last) {
			return nil, fmt.Errorf("auto_fwmark range %d-%d is exhausted", r.First, r.Last)
		}
		out[name] = uint32(next)
		used[uint32(next)] = true
	}
	return out, nil
}
