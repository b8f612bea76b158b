package director

import (
	"slices"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// quickMax is the number of changed virtual services up to which
// quickPlan works service by service.
const quickMax = 32

// quickPlan plans cfg against the engine's view when it differs from the
// last reconciled configuration only inside a few virtual services, each
// keeping its name, service key, ports and VIP binding (what sets the
// service keys, names, firewall marks and bound VIPs): a weight, a real
// server, a scheduler or persistence change. It builds and compares
// those services only, so the cost does not grow with the table beyond
// one pass over the configuration. It returns nil when cfg needs the
// full computation.
func (e *Engine) quickPlan(cfg *Config) *planned {
	l := e.last
	old, now := l.cfg.VirtualServices, cfg.VirtualServices
	if len(old) != len(now) || cfg.Director.AutoFWMark != l.cfg.Director.AutoFWMark {
		return nil
	}
	changed, ok := changedServices(old, now)
	if !ok {
		return nil
	}
	nat := false
	for _, i := range changed {
		nat = nat || usesNAT(&old[i]) || usesNAT(&now[i])
	}
	return e.planServices(cfg, changed, nat)
}

// planServices plans the virtual services of cfg at the positions changed
// (in order) against the engine's view, assuming every other service is
// as the last reconciliation left it (cfg has the same services as its
// configuration, in the same order, with the same identities). It builds
// and compares those services only, with the current inputs. nat says
// whether NAT use may have changed. It returns nil when cfg needs the full
// computation.
func (e *Engine) planServices(cfg *Config, changed []int, nat bool) *planned {
	l := e.last
	now := cfg.VirtualServices
	p := &planned{plan: l.plan, marks: l.marks, cur: e.table, curOps: e.pending, nat4: l.nat4, nat6: l.nat6, belief: true, quick: true}
	if len(changed) == 0 {
		return p
	}
	sub := &Config{Director: cfg.Director, VirtualServices: make([]VirtualService, len(changed))}
	for j, i := range changed {
		sub.VirtualServices[j] = now[i]
	}
	if nat {
		p.nat4, p.nat6 = cfg.UsesNAT()
	}
	dp, err := Desired(sub, l.marks, e.in)
	if err != nil || len(dp.Table.Services) != len(changed) || len(l.plan.Table.Services) != len(now) {
		return nil
	}
	// The desired table has one entry per virtual service, in order.
	p.replace = make(map[int]ipvs.ServiceEntry, len(changed))
	keys := make([]ipvs.ServiceKey, len(changed))
	for j, i := range changed {
		s := dp.Table.Services[j]
		if ipvs.NormKey(s.ServiceKey) != ipvs.NormKey(l.plan.Table.Services[i].ServiceKey) {
			return nil
		}
		p.replace[i] = s
		keys[j] = ipvs.NormKey(s.ServiceKey)
	}
	wanted := func(k ipvs.ServiceKey) bool { return slices.Contains(keys, ipvs.NormKey(k)) }
	if len(keys) > 4 {
		set := make(map[ipvs.ServiceKey]bool, len(keys))
		for _, k := range keys {
			set[k] = true
		}
		wanted = func(k ipvs.ServiceKey) bool { return set[ipvs.NormKey(k)] }
	}
	// The changed services as the engine believes the kernel holds them
	// (one missing there is added back): as last read, with the
	// operations applied to them since.
	cur := &ipvs.Table{}
	for i := range e.table.Services {
		if wanted(e.table.Services[i].ServiceKey) {
			cur.Services = append(cur.Services, e.table.Services[i])
		}
	}
	var since []ipvs.Op
	for _, op := range e.pending {
		if wanted(op.Service.ServiceKey) {
			since = append(since, op)
		}
	}
	if len(since) > 0 {
		cur = ipvs.ApplyOps(cur, since, nil)
	}
	// No current service is outside the desired subset: nothing is
	// deleted, so ownership does not matter here.
	p.ops = Diff(dp.Table, cur, nil)
	return p
}

// changedServices returns the positions of the services of now that
// differ from old (of the same length), in order. ok is false when more
// than quickMax differ or one changes its identity (see
// sameServiceIdentity).
func changedServices(old, now []VirtualService) (changed []int, ok bool) {
	for i := range now {
		a, b := &old[i], &now[i]
		if sameVirtualService(a, b) {
			continue
		}
		if len(changed) == quickMax || !sameServiceIdentity(a, b) {
			return nil, false
		}
		changed = append(changed, i)
	}
	return changed, true
}

// usesNAT reports whether a real server of vs is forwarded by NAT.
func usesNAT(vs *VirtualService) bool {
	if vs.sorry != nil && vs.sorry.Forward == ipvs.Masq {
		return true
	}
	for i := range vs.RealServers {
		if vs.RealServers[i].forward == ipvs.Masq {
			return true
		}
	}
	return false
}

// sameServiceIdentity reports whether a and b have the same name and set
// the same service key, firewall-mark rule and VIP binding.
func sameServiceIdentity(a, b *VirtualService) bool {
	return a.Name == b.Name && a.VIP == b.VIP && a.Family == b.Family && a.Protocol == b.Protocol &&
		eqPtr(a.Port, b.Port) && (a.Ports == nil) == (b.Ports == nil) && slices.Equal(a.Ports, b.Ports) &&
		eqPtr(a.FWMark, b.FWMark) && a.BindVIP == b.BindVIP &&
		a.vip == b.vip && a.family == b.family && a.proto == b.proto && a.explicit == b.explicit
}

// sameVirtualService reports whether a and b are the same configuration.
// It compares every field the file sets (TestSameVirtualServiceFields
// keeps it complete).
func sameVirtualService(a, b *VirtualService) bool {
	if !sameServiceIdentity(a, b) || a.Scheduler != b.Scheduler || !slices.Equal(a.SchedulerFlags, b.SchedulerFlags) ||
		a.OnePacket != b.OnePacket || a.Forwarding != b.Forwarding || len(a.RealServers) != len(b.RealServers) ||
		a.flags != b.flags || a.timeout != b.timeout || a.netmask != b.netmask || a.forward != b.forward || !a.FullNAT.same(&b.FullNAT) {
		return false
	}
	if (a.Persistence == nil) != (b.Persistence == nil) || a.Persistence != nil && *a.Persistence != *b.Persistence || !sameInputs(a, b) {
		return false
	}
	// Real servers are many: their address, forwarding and tunnel type
	// are compared as parsed, which is cheaper than as written and
	// equivalent for the kernel.
	for i := range a.RealServers {
		x, y := &a.RealServers[i], &b.RealServers[i]
		if x.addr != y.addr || x.forward != y.forward || x.tunType != y.tunType ||
			x.UpperThreshold != y.UpperThreshold || x.LowerThreshold != y.LowerThreshold || x.TunnelPort != y.TunnelPort ||
			!eqPtr(x.Weight, y.Weight) || !eqPtr(x.Port, y.Port) {
			return false
		}
	}
	return true
}

// eqPtr reports whether two optional values are both absent or equal.
func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
