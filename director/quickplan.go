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
	var changed []int
	ok := true
	switch {
	case cfg == l.cfg:
	case cfg.from.from(l.cfg):
		// The loader says where cfg may differ: look there alone.
		changed, ok = changedAmong(old, now, cfg.from.changed)
	default:
		changed, ok = changedServices(old, now)
	}
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
	for _, k := range keys {
		if i, ok := e.vidx.find(e.table, k); ok {
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

// changedAmong is changedServices for the positions maybe of services
// that may differ (the others are known to be the same). More changed
// services than quickMax are fine here, up to half of them: the cost
// follows their number.
func changedAmong(old, now []VirtualService, maybe []int) (changed []int, ok bool) {
	for _, i := range maybe {
		a, b := &old[i], &now[i]
		if sameVirtualService(a, b) {
			continue
		}
		if len(changed) >= max(quickMax, len(now)/2) || !sameServiceIdentity(a, b) {
			return nil, false
		}
		changed = append(changed, i)
	}
	return changed, true
}

// viewIndex finds services in the engine's view by key, so that a quick
// plan does not go over the whole view. It is built again when the view
// is replaced.
type viewIndex struct {
	of  *ipvs.Table
	pos map[ipvs.ServiceKey]int
}

func (x *viewIndex) find(t *ipvs.Table, k ipvs.ServiceKey) (int, bool) {
	if t == nil {
		return 0, false
	}
	if x.of != t {
		x.of, x.pos = t, make(map[ipvs.ServiceKey]int, len(t.Services))
		for i := range t.Services {
			k := ipvs.NormKey(t.Services[i].ServiceKey)
			if _, dup := x.pos[k]; !dup {
				x.pos[k] = i
			}
		}
	}
	i, ok := x.pos[ipvs.NormKey(k)]
	return i, ok
}

// followConfig puts cfg in force in place of the configuration in force
// when its loader says where it differs (see delta): the index of names
// and the inputs are updated for those services alone. It reports false,
// changing nothing, when cfg does not say.
func (e *Engine) followConfig(cfg *Config) bool {
	if e.cfg == nil || e.byName == nil || !cfg.from.from(e.cfg) {
		return false
	}
	old, now := e.cfg.VirtualServices, cfg.VirtualServices
	for _, i := range cfg.from.changed {
		if j, ok := e.byName[old[i].Name]; ok && j == i {
			delete(e.byName, old[i].Name)
		}
	}
	for _, i := range cfg.from.changed {
		e.byName[now[i].Name] = i
	}
	e.cfg = cfg
	if len(e.in.Health) == 0 && len(e.in.Feedback) == 0 {
		return true
	}
	// Forget the inputs of real servers the changed services no longer
	// have (see Inputs.prune).
	has := func(r ServerRef) bool {
		i, ok := e.byName[r.Service]
		if !ok {
			return false
		}
		vs := &now[i]
		for j := range vs.RealServers {
			if vs.ref(j) == r {
				return true
			}
		}
		return false
	}
	for _, i := range cfg.from.changed {
		vs := &old[i]
		for j := range vs.RealServers {
			if r := vs.ref(j); !has(r) {
				delete(e.in.Health, r)
				delete(e.in.Feedback, r)
			}
		}
	}
	return true
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
