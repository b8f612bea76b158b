package director

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/lvs-node/lvs-node/healthz"
	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// Status is what the director reports on its control socket (the status
// command) and what "lvs-node status --json" prints. Field names are
// stable; fields may be added.
type Status struct {
	Role      string          `json:"role"` // director
	Config    string          `json:"config,omitempty"`
	HARole    string          `json:"ha_role"` // standalone, master, backup, fault
	Ready     bool            `json:"ready"`
	NotReady  string          `json:"not_ready,omitempty"`
	LastApply time.Time       `json:"last_apply,omitzero"`
	Reloads   uint64          `json:"reloads"`
	Refused   uint64          `json:"reloads_refused"`
	Repairs   uint64          `json:"drift_repairs"`
	Services  []ServiceStatus `json:"services"`
}

// ServiceStatus is one virtual service.
type ServiceStatus struct {
	Name      string `json:"name"`
	Service   string `json:"service"` // "TCP 10.0.0.100:80", "FWM 7", "TCP 10.0.0.100 ports 80,443"
	Scheduler string `json:"scheduler"`
	// Check summarises the service's health check ("http /health every
	// 2s, rise 2, fall 3, quiesce"); empty when unchecked.
	Check    string `json:"check,omitempty"`
	Feedback bool   `json:"feedback"`
	// Quorum is set when the service has a quorum or a sorry server.
	Quorum      *QuorumStatus      `json:"quorum,omitempty"`
	SorryServer *SorryServerStatus `json:"sorry_server,omitempty"`
	RealServers []RealServerStatus `json:"real_servers"`
}

// QuorumStatus is the state of a service's quorum.
type QuorumStatus struct {
	MinUp   int  `json:"min_up"` // 1 with a sorry server and no quorum block
	Serving int  `json:"serving"`
	Met     bool `json:"met"`
	Kept    int  `json:"kept,omitempty"` // failed real servers kept for the quorum
}

// SorryServerStatus is a service's sorry server.
type SorryServerStatus struct {
	Address    string `json:"address"`
	Forwarding string `json:"forwarding"`
	Active     bool   `json:"active"`
}

// RealServerStatus is one real server of a service.
type RealServerStatus struct {
	Address    string `json:"address"` // ADDRESS:PORT
	Forwarding string `json:"forwarding"`
	// Health is up, down, pending or unchecked, with why and since when.
	Health       string       `json:"health"`
	HealthReason string       `json:"health_reason,omitempty"`
	HealthSince  time.Time    `json:"health_since,omitzero"`
	Check        *CheckStatus `json:"check,omitempty"`
	// ConfiguredWeight is the file's; EffectiveWeight what the inputs
	// make of it, with Reason saying why they differ ("down: HTTP 503
	// after 3 checks", "agent: drain", "capacity 25%").
	ConfiguredWeight int32  `json:"configured_weight"`
	EffectiveWeight  int32  `json:"effective_weight"`
	Present          bool   `json:"present"` // false: removed from the kernel (on_failure: remove)
	Reason           string `json:"reason,omitempty"`
	// KernelWeight is what the kernel holds as of the last
	// reconciliation (nil: not in the kernel).
	KernelWeight *int32 `json:"kernel_weight,omitempty"`
	// Capacity is the share of its configured weight load feedback gives
	// it (1 = all), nil without feedback or while the agent is stale.
	Capacity *float64     `json:"capacity,omitempty"`
	Agent    *AgentStatus `json:"agent,omitempty"`
	Drained  bool         `json:"drained"` // by the operator
	// ActiveConns and InactiveConns as of the last kernel read.
	ActiveConns   uint32 `json:"active_connections"`
	InactiveConns uint32 `json:"inactive_connections"`
	// LastChange is the last change of an input (health, agent, drain)
	// and what it was.
	LastChange       time.Time `json:"last_change,omitzero"`
	LastChangeReason string    `json:"last_change_reason,omitempty"`
}

// CheckStatus is the health check of a real server.
type CheckStatus struct {
	Type     string    `json:"type"`
	Target   string    `json:"target"`
	Checks   uint64    `json:"checks"`
	Last     string    `json:"last,omitempty"` // "HTTP 200 (1.2ms)"
	LastOK   bool      `json:"last_ok"`
	LastAt   time.Time `json:"last_at,omitzero"`
	Shared   int       `json:"shared"` // owners sharing the check
	Restored bool      `json:"restored,omitempty"`
}

// AgentStatus is what the real server's load agent last reported.
type AgentStatus struct {
	Admin  string    `json:"admin"` // ready, drain, maint
	Weight int       `json:"weight"`
	Stale  bool      `json:"stale"`
	Down   bool      `json:"down"` // reports down, counted with agent_health
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// BuildStatus describes the configuration in force with every real
// server's inputs and weights. m may be nil (no checks running). It reads
// published state only: it never waits for a reconciliation.
func BuildStatus(e *Engine, m *Monitor, path string) *Status {
	cfg, in, cnt := e.Config(), e.Inputs(), e.Counters()
	st := &Status{Role: "director", Config: path, HARole: in.Role.String(), LastApply: cnt.LastApply,
		Reloads: cnt.Reloads, Refused: cnt.ReloadErrors, Repairs: cnt.Repairs, Services: []ServiceStatus{}}
	if err := e.Ready(); err != nil {
		st.NotReady = err.Error()
	} else {
		st.Ready = true
	}
	if cfg == nil {
		return st
	}
	var (
		checks    map[ServerRef]checkState
		fb        map[ServerRef]feedbackState
		agentDown map[ServerRef]string
		details   = map[ServerRef]healthz.Status{}
	)
	if m != nil {
		checks, fb, agentDown = m.snapshot()
		for _, s := range m.mgr.Status() {
			details[refOf(s.Owner)] = s
		}
	}
	table, names := e.Snapshot()
	kernel := map[ServerRef]ipvs.DestEntry{}
	if table != nil {
		for i := range table.Services {
			s := &table.Services[i]
			if name, ok := names[ipvs.NormKey(s.ServiceKey)]; ok {
				for _, d := range s.Dests {
					kernel[ServerRef{Service: name, Addr: d.Addr, Port: d.Port}] = d
				}
			}
		}
	}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		w := vs.weights(in)
		ss := ServiceStatus{Name: vs.Name, Service: vs.describe(), Scheduler: vs.Scheduler, Feedback: vs.Feedback != nil,
			RealServers: make([]RealServerStatus, 0, len(vs.RealServers))}
		if vs.HealthCheck != nil {
			if c := vs.HealthCheck.WithDefaults(); c.Type != healthz.TypeNone {
				ss.Check = describeCheck(&c)
			}
		}
		if w.need > 0 {
			ss.Quorum = &QuorumStatus{MinUp: w.need, Serving: w.serving, Met: w.quorumMet(), Kept: w.kept}
		}
		if s := vs.sorry; s != nil {
			ss.SorryServer = &SorryServerStatus{Address: hostPort(s.Addr, s.Port), Forwarding: s.Forward.String(), Active: w.sorry}
		}
		for j := range vs.RealServers {
			r := vs.ref(j)
			rs := &vs.RealServers[j]
			x := RealServerStatus{Address: hostPort(r.Addr, r.Port), Forwarding: rs.forward.String(),
				ConfiguredWeight: int32(*rs.Weight), EffectiveWeight: int32(*rs.Weight), Present: true, Health: "unchecked"}
			if w.servers != nil {
				e := w.servers[j]
				x.EffectiveWeight, x.Present, x.Reason = e.Weight, e.Present, e.Reason
				if !e.Present {
					x.EffectiveWeight = 0
				}
			}
			si := in.Of(r)
			_, checked := vs.Check(j)
			if h := si.Health; h != nil && (checked || h.State != Up) {
				x.Health, x.HealthReason, x.HealthSince = h.State.String(), h.Reason, h.Since
			} else if checked {
				x.Health, x.HealthReason = Pending.String(), "not checked up yet"
			}
			if d, ok := details[r]; ok {
				c := &CheckStatus{Type: d.Type, Target: d.Target.String(), Checks: d.Checks, Shared: d.Shared}
				if d.Checks > 0 {
					c.Last, c.LastOK, c.LastAt = d.Last.String(), d.Last.OK, d.Last.At
				}
				c.Restored = strings.HasPrefix(checks[r].Reason, "restored: ")
				x.Check = c
			}
			if f := si.Feedback; f != nil && !math.IsNaN(f.Capacity) {
				c := f.Capacity
				x.Capacity = &c
			}
			if d, ok := fb[r]; ok {
				_, down := agentDown[r]
				x.Agent = &AgentStatus{Admin: d.Admin.String(), Weight: d.Weight, Stale: d.Stale, Down: down, Reason: d.Reason, Since: d.At}
			}
			if o := si.Override; o != nil && o.Drain {
				x.Drained = true
			}
			if d, ok := kernel[r]; ok {
				kw := d.Weight
				x.KernelWeight, x.ActiveConns, x.InactiveConns = &kw, d.ActiveConns, d.InactConns
			}
			x.LastChange, x.LastChangeReason = lastChange(si, fb[r])
			ss.RealServers = append(ss.RealServers, x)
		}
		st.Services = append(st.Services, ss)
	}
	return st
}

// lastChange is the latest change of a real server's inputs.
func lastChange(si ServerInputs, fb feedbackState) (time.Time, string) {
	var at time.Time
	why := ""
	if h := si.Health; h != nil && !h.Since.IsZero() {
		at, why = h.Since, h.State.String()
		if h.Reason != "" {
			why += ": " + h.Reason
		}
	}
	if !fb.At.IsZero() && fb.At.After(at) {
		at, why = fb.At, "agent: "+fb.Reason
	}
	if o := si.Override; o != nil && o.Drain && o.Since.After(at) {
		at, why = o.Since, "drained by the operator"
	}
	return at, why
}

// describe names the service as ipvsadm would.
func (vs *VirtualService) describe() string {
	proto := strings.ToUpper(vs.proto.String())
	switch {
	case vs.FWMark != nil:
		return "FWM " + strconv.FormatUint(uint64(*vs.FWMark), 10)
	case vs.Ports != nil:
		ports := make([]string, len(vs.Ports))
		for i, p := range vs.Ports {
			ports[i] = strconv.Itoa(int(p))
		}
		return fmt.Sprintf("%s %s ports %s", proto, vs.vip, strings.Join(ports, ","))
	}
	return proto + " " + hostPort(vs.vip, *vs.Port)
}

// describeCheck summarises a check for status.
func describeCheck(c *healthz.Spec) string {
	s := c.Type
	switch c.Type {
	case healthz.TypeHTTP, healthz.TypeHTTPS:
		s += " " + c.Path
	case healthz.TypeDNS:
		s += " " + c.Query + " " + c.QType
	case healthz.TypeExec:
		s += " " + c.Command
	}
	if c.Port != 0 {
		s += " port " + strconv.Itoa(int(c.Port))
	}
	return fmt.Sprintf("%s every %s, rise %d, fall %d, %s", s, c.Interval, c.Rise, c.Fall, c.OnFailure)
}

func hostPort(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }
