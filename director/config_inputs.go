package director

import (
	"fmt"
	"net/netip"
	"reflect"

	"github.com/lvs-node/lvs-node/director/feedback"
	"github.com/lvs-node/lvs-node/healthz"
	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// ServiceInputs are the blocks of a virtual service that feed the
// director's inputs other than the file: its health check (overridable
// per real server), the sorry server, the quorum and load feedback.
// VirtualService holds them inline, so they are keys of the service:
//
//	health_check: {type: http, path: /health, interval: 2s, timeout: 1s, rise: 2, fall: 3, on_failure: quiesce}
//	sorry_server: {address: 10.0.0.250, port: 80, forwarding: nat}
//	quorum: {min_up: 2}
//	feedback: {interval: 2s, port: 3262, stale_after: 10s}
//
// See healthz.Spec, healthz.SorryServer, healthz.Quorum and
// feedback.Spec for every key, and EffectiveWeight and weights for how
// they combine.
type ServiceInputs struct {
	HealthCheck *healthz.Spec        `yaml:"health_check"`
	SorryServer *healthz.SorryServer `yaml:"sorry_server"`
	Quorum      *healthz.Quorum      `yaml:"quorum"`
	Feedback    *feedback.Spec       `yaml:"feedback"`

	// Filled by validation.
	sorry   *ipvs.Destination // the sorry server as a destination
	checked bool              // some real server has a check
}

// RealServerInputs are the blocks of a real server that override its
// service's: health_check (merged key by key, see healthz.Merge; type:
// none turns the check off for this server).
type RealServerInputs struct {
	HealthCheck *healthz.Spec `yaml:"health_check"`

	// Filled by validation: the check that runs, with every default
	// filled; nil when the server is not checked. Real servers without a
	// block of their own share their service's.
	check *healthz.Spec
}

// Check returns the health check that runs for the j-th real server (its
// service's block merged with its own, defaults filled) and whether
// there is one.
func (vs *VirtualService) Check(j int) (healthz.Spec, bool) {
	if c := vs.RealServers[j].check; c != nil {
		return *c, true
	}
	return healthz.Spec{}, false
}

// rule is what vs says about the effective weights of its j-th real
// server: quiesce or remove on failure and whether it is checked (its
// health check), the bounds of a weight scaled by feedback (its
// feedback block).
func (vs *VirtualService) rule(j int) WeightRule {
	r := WeightRule{OnFailure: Quiesce, MaxWeight: maxWeight}
	if c := vs.RealServers[j].check; c != nil {
		r.Checked = true
		if c.OnFailure == healthz.OnFailureRemove {
			r.OnFailure = Remove
		}
	}
	if f := vs.Feedback; f != nil {
		r.MinWeight, r.MaxWeight = int32(f.MinWeight), int32(f.MaxWeight)
	}
	return r
}

// servicePort is the port of a classic service, 0 for a firewall-mark one.
func (vs *VirtualService) servicePort() uint16 {
	if vs.Port != nil && vs.FWMark == nil && vs.Ports == nil {
		return *vs.Port
	}
	return 0
}

// inputs validates the input blocks of vs (at path p) and fills what they
// derive. It runs after the real servers are validated.
func (v *validator) inputs(vs *VirtualService, p string) {
	add := func(errs config.Errors) { v.errs = append(v.errs, errs...) }
	hp := config.Join(p, "health_check")
	add(vs.HealthCheck.Validate(v.doc, hp, nil))
	vs.checked = false
	portless := map[string]bool{} // paths already reported
	var shared *healthz.Spec      // the service's block with defaults, for servers without one
	for j := range vs.RealServers {
		rs := &vs.RealServers[j]
		rp := config.Join(config.Index(config.Join(p, "real_servers"), j), "health_check")
		add(rs.HealthCheck.Validate(v.doc, rp, vs.HealthCheck))
		rs.check = nil
		if vs.HealthCheck == nil && rs.HealthCheck == nil {
			continue
		}
		var eff *healthz.Spec
		if rs.HealthCheck == nil && shared != nil {
			eff = shared
		} else {
			e := healthz.Merge(vs.HealthCheck, rs.HealthCheck).WithDefaults()
			eff = &e
			if rs.HealthCheck == nil {
				shared = eff
			}
		}
		if eff.Type == healthz.TypeNone {
			continue
		}
		rs.check, vs.checked = eff, true
		// A real server of a firewall-mark service has no port of its
		// own: a check that connects needs port: in its spec.
		if eff.NeedsPort() && rs.Port != nil && rs.addr.IsValid() && healthz.TargetOf(eff, netip.AddrPortFrom(rs.addr, *rs.Port)).Port() == 0 {
			at := hp
			if rs.HealthCheck != nil {
				at = rp
			}
			if !portless[at] {
				portless[at] = true
				v.errorf(at, "a %s check of a real server without a port (a firewall-mark service) needs port: the port to check", eff.Type)
			}
		}
	}
	add(vs.Quorum.Validate(v.doc, config.Join(p, "quorum"), len(vs.RealServers)))
	if f := vs.Feedback; f != nil {
		add(f.Validate(v.doc, config.Join(p, "feedback")))
	}
	vs.sorry = nil
	if s := vs.SorryServer; s != nil {
		sp := config.Join(p, "sorry_server")
		if errs := s.Validate(v.doc, sp); len(errs) > 0 {
			add(errs)
			return
		}
		if d, err := vs.sorryDest(); err != nil {
			v.errorf(err.key(sp), "%s", err.msg)
		} else {
			vs.sorry = d
		}
	}
}

// sorryError is a problem with the sorry server at one of its keys.
type sorryError struct{ k, msg string }

func (e *sorryError) key(p string) string {
	if e.k == "" {
		return p
	}
	return config.Join(p, e.k)
}

// sorryDest builds the sorry server of vs as a destination: the service's
// port and forwarding unless it sets its own, weight 1.
func (vs *VirtualService) sorryDest() (*ipvs.Destination, *sorryError) {
	s := vs.SorryServer
	a := s.Addr()
	if ipvs.FamilyOf(a) != vs.family {
		return nil, &sorryError{"address", fmt.Sprintf("%s sorry server %s behind an %s service", famName(ipvs.FamilyOf(a)), a, famName(vs.family))}
	}
	fwd, set := s.Forward()
	if !set {
		fwd = vs.forward
	}
	port := vs.servicePort()
	if s.Port != 0 {
		if fwd != ipvs.Masq && s.Port != port {
			return nil, &sorryError{"port", fmt.Sprintf("a %s sorry server must use the service port %d (only nat maps ports), got %d", fwd, port, s.Port)}
		}
		port = s.Port
	}
	d := &ipvs.Destination{DestKey: ipvs.DestKey{Addr: a, Port: port}, Forward: fwd, Weight: 1}
	if fwd == ipvs.Tunnel {
		d.TunType = ipvs.TunIPIP
	}
	for j := range vs.RealServers {
		rs := &vs.RealServers[j]
		if rs.addr == a && rs.Port != nil && *rs.Port == port {
			return nil, &sorryError{"address", fmt.Sprintf("%s is also a real server of this service", netip.AddrPortFrom(a, port))}
		}
	}
	return d, nil
}

// sameInputs reports whether the input blocks of a and b (services of the
// same shape) are the same.
func sameInputs(a, b *VirtualService) bool {
	if !eqSpec(a.HealthCheck, b.HealthCheck) || !reflect.DeepEqual(a.SorryServer, b.SorryServer) ||
		!eqPtr(a.Quorum, b.Quorum) || !reflect.DeepEqual(a.Feedback, b.Feedback) {
		return false
	}
	for i := range a.RealServers {
		if !eqSpec(a.RealServers[i].HealthCheck, b.RealServers[i].HealthCheck) {
			return false
		}
	}
	return true
}

func eqSpec(a, b *healthz.Spec) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(a, b)
}
