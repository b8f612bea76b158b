package director

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"time"
)

// The desired IPVS table is a pure function of separate inputs (see
// Desired): the configuration file, and per real server its health, the
// feedback of its agent and the operator's override, plus the director's
// HA role. Each input other than the file has its own setter on Engine
// (SetHealth, SetFeedback, SetOverride, SetRole), which writes only the
// destinations whose effective weight it changes; a reload of the file
// keeps them, and a resync re-applies all of them.

// ServerRef names one real server of one virtual service: the service's
// name and the real server's address and port as the kernel holds them
// (the port is 0 for firewall-mark services that keep the client's port).
type ServerRef struct {
	Service string
	Addr    netip.Addr
	Port    uint16
}

func (r ServerRef) String() string {
	return fmt.Sprintf("%s/%s", r.Service, netip.AddrPortFrom(r.Addr, r.Port))
}

// HealthState is the health-check verdict on a real server.
type HealthState uint8

// Health states. A checked real server with no verdict yet is Pending: it
// gets no new connections until it passes its first checks.
const (
	Pending HealthState = iota
	Up
	Down
)

func (h HealthState) String() string {
	switch h {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "pending"
}

// Health is the health input of one real server.
type Health struct {
	State  HealthState
	Reason string // "HTTP 503 after 3 checks"
	Since  time.Time
}

// Admin is the administrative state a real server's agent reports.
type Admin uint8

// Admin states (HAProxy agent-check words).
const (
	Ready Admin = iota
	Drain       // weight 0, established connections finish
	Maint       // weight 0
)

func (a Admin) String() string {
	switch a {
	case Drain:
		return "drain"
	case Maint:
		return "maint"
	}
	return "ready"
}

// Feedback is the load-feedback input of one real server: what its agent
// reports, smoothed by the feedback controller.
type Feedback struct {
	Admin Admin
	// Capacity is the share of the configured weight the real server
	// should get (1 = all of it); NaN when the agent reports none or is
	// stale, which means the configured weight.
	Capacity float64
	Reason   string
}

// NoCapacity is the Capacity of feedback that reports no load.
func NoCapacity() float64 { return math.NaN() }

// Override is the operator's manual state of a real server (lvs-node
// director drain|ready). It survives restarts.
type Override struct {
	Drain bool      `json:"drain"`
	Since time.Time `json:"since"`
}

// Role is the director's HA role, set by keepalived's notify hooks.
type Role uint8

// HA roles. Standalone is a director without HA.
const (
	Standalone Role = iota
	Master
	Backup
	Fault
)

func (r Role) String() string {
	switch r {
	case Master:
		return "master"
	case Backup:
		return "backup"
	case Fault:
		return "fault"
	}
	return "standalone"
}

// OnFailure is what becomes of a real server whose health check fails.
type OnFailure uint8

// Failure actions.
const (
	// Quiesce sets the weight to 0: established connections finish, new
	// ones (and, with persistence, clients whose template points at the
	// server until the template expires; see expire_quiescent_template)
	// go elsewhere.
	Quiesce OnFailure = iota
	// Remove deletes the destination: its connections stop being
	// forwarded (expire_nodest_conn decides whether at once) and its
	// persistence templates no longer match.
	Remove
)

// WeightRule is what a virtual service's configuration says about
// effective weights.
type WeightRule struct {
	OnFailure OnFailure
	// Checked: the real servers have a health check, so one without a
	// verdict is Pending rather than trusted.
	Checked bool
	// MinWeight and MaxWeight bound a weight scaled by feedback.
	MinWeight, MaxWeight int32
}

// ServerInputs are the inputs of one real server.
type ServerInputs struct {
	Health   *Health // nil: no verdict
	Feedback *Feedback
	Override *Override
}

// Effective is the weight a real server gets and why.
type Effective struct {
	Weight  int32
	Present bool   // false: the destination is not in the kernel
	Reason  string // empty when Weight is the configured weight
}

// EffectiveWeight is the one rule that turns a real server's configured
// weight and its inputs into what the kernel gets. In order:
//
//  1. health: a Down server (or a Pending one, when the service is
//     checked) gets weight 0, or is removed when rule.OnFailure is Remove;
//  2. the operator's drain, then the agent's drain or maint: weight 0,
//     established connections finish;
//  3. feedback capacity: configured weight x capacity, rounded and
//     clamped to [rule.MinWeight, rule.MaxWeight]; a configured weight of
//     0 stays 0 and a missing capacity (NaN) keeps the configured weight.
func EffectiveWeight(configured int32, in ServerInputs, rule WeightRule) Effective {
	h := Up
	reason := ""
	switch {
	case in.Health != nil:
		h, reason = in.Health.State, in.Health.Reason
	case rule.Checked:
		h, reason = Pending, "no health verdict yet"
	}
	if h != Up {
		e := Effective{Present: rule.OnFailure != Remove, Reason: h.String()}
		if reason != "" {
			e.Reason += ": " + reason
		}
		return e
	}
	if in.Override != nil && in.Override.Drain {
		return Effective{Present: true, Reason: "drained by the operator"}
	}
	if f := in.Feedback; f != nil {
		if f.Admin != Ready {
			r := "agent: " + f.Admin.String()
			if f.Reason != "" {
				r += " (" + f.Reason + ")"
			}
			return Effective{Present: true, Reason: r}
		}
		if !math.IsNaN(f.Capacity) && configured > 0 {
			w := int32(math.Round(float64(configured) * math.Max(f.Capacity, 0)))
			lo, hi := rule.MinWeight, rule.MaxWeight
			if hi <= 0 {
				hi = maxWeight
			}
			w = min(max(w, lo), hi)
			if w == configured {
				return Effective{Weight: w, Present: true}
			}
			r := fmt.Sprintf("capacity %.0f%%", f.Capacity*100)
			if f.Reason != "" {
				r += " (" + f.Reason + ")"
			}
			return Effective{Weight: w, Present: true, Reason: r}
		}
	}
	return Effective{Weight: configured, Present: true}
}

// Inputs are the director's inputs other than the configuration file.
// The zero value (or nil) is no input: every real server at its
// configured weight.
type Inputs struct {
	Health   map[ServerRef]Health
	Feedback map[ServerRef]Feedback
	Override map[ServerRef]Override
	Role     Role
}

// NewInputs returns empty inputs ready for use.
func NewInputs() *Inputs {
	return &Inputs{Health: map[ServerRef]Health{}, Feedback: map[ServerRef]Feedback{}, Override: map[ServerRef]Override{}}
}

// Of returns the inputs of one real server.
func (in *Inputs) Of(r ServerRef) ServerInputs {
	var s ServerInputs
	if in == nil {
		return s
	}
	if h, ok := in.Health[r]; ok {
		s.Health = &h
	}
	if f, ok := in.Feedback[r]; ok {
		s.Feedback = &f
	}
	if o, ok := in.Override[r]; ok {
		s.Override = &o
	}
	return s
}

// Clone copies in, for a snapshot that readers may keep.
func (in *Inputs) Clone() *Inputs {
	return &Inputs{Health: maps.Clone(in.Health), Feedback: maps.Clone(in.Feedback), Override: maps.Clone(in.Override), Role: in.Role}
}

// empty reports whether no real server has an input.
func (in *Inputs) empty() bool {
	return in == nil || len(in.Health)+len(in.Feedback)+len(in.Override) == 0
}

// prune forgets the health and feedback of real servers cfg no longer
// has. The operator's overrides are kept until the operator lifts them.
func (in *Inputs) prune(cfg *Config) {
	if len(in.Health) == 0 && len(in.Feedback) == 0 {
		return
	}
	have := make(map[ServerRef]bool)
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		for j := range vs.RealServers {
			have[vs.ref(j)] = true
		}
	}
	maps.DeleteFunc(in.Health, func(r ServerRef, _ Health) bool { return !have[r] })
	maps.DeleteFunc(in.Feedback, func(r ServerRef, _ Feedback) bool { return !have[r] })
}
