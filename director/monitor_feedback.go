package director

import (
	"net/netip"
	"reflect"

	"github.com/lvs-node/lvs-node/director/feedback"
	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// feedbackTargets lists the agents to poll for cfg: every real server of
// a service with a feedback block, at its address and the block's port.
func feedbackTargets(cfg *Config) []feedback.Target[ServerRef] {
	var out []feedback.Target[ServerRef]
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if vs.Feedback == nil {
			continue
		}
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			r := vs.ref(j)
			out = append(out, feedback.Target[ServerRef]{
				Key: r, Service: vs.Name, Server: netip.AddrPortFrom(rs.addr, *rs.Port).String(),
				Agent: netip.AddrPortFrom(rs.addr, vs.Feedback.Port), Weight: int(*rs.Weight), Spec: *vs.Feedback,
			})
		}
	}
	return out
}

// sameTarget reports whether the poller keeps the state of a target
// across a reload (same agent, configured weight and spec).
func sameTarget(a, b feedback.Target[ServerRef]) bool {
	return a.Agent == b.Agent && a.Weight == b.Weight && reflect.DeepEqual(a.Spec, b.Spec)
}

// feedbackInput is the engine's feedback input for a decision: nil (the
// configured weight) while the agent is stale.
func feedbackInput(d feedback.Decision) *Feedback {
	if d.Stale {
		return nil
	}
	f := &Feedback{Capacity: d.Capacity, Reason: d.Reason}
	switch d.Admin {
	case agentcheck.AdminDrain:
		f.Admin, f.Reason = Drain, ""
	case agentcheck.AdminMaint:
		f.Admin, f.Reason = Maint, ""
	}
	return f
}
