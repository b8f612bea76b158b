package rsagent

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lvs-node/lvs-node/rsagent/agentserver"
	"github.com/lvs-node/lvs-node/toa"
)

// AgentStatus is the load agent's part of the status: what it answers
// now, from which readings, and how often it was asked.
type AgentStatus struct {
	Listen string `json:"listen"`
	HTTP   string `json:"http,omitempty"`
	agentserver.Details
	agentserver.Stats
}

// TOAStatus is eBPF TOA's part of the status.
type TOAStatus struct {
	Enabled bool     `json:"enabled"`
	Cgroup  string   `json:"cgroup,omitempty"`
	Trusted []string `json:"trusted_sources"`
	// Attached: its programs are pinned (attached) on this host.
	Attached bool `json:"attached"`
	// Error is why the last pass could not apply it.
	Error string `json:"error,omitempty"`
}

// agentStatus describes the reporter; nil without an agent.
func (r *Reporter) agentStatus() *AgentStatus {
	if r == nil {
		return nil
	}
	return &AgentStatus{Listen: r.rs.Agent.Listen, HTTP: r.rs.Agent.HTTP, Details: agentserver.DetailsOf(r.Report()), Stats: r.Stats()}
}

// status describes eBPF TOA as configured and applied; nil without a
// toa block or a host to apply it on.
func (k *toaKeeper) status(a *Agent) *TOAStatus {
	a.mu.Lock()
	t := a.cfg.Realserver.TOA
	a.mu.Unlock()
	if t == nil || k == nil || k.h == nil {
		return nil
	}
	st := &TOAStatus{Enabled: t.Enabled, Cgroup: t.Cgroup, Trusted: append([]string{}, t.TrustedSources...), Error: k.lastErr}
	if h, ok := k.h.(interface{ Attached() bool }); ok {
		st.Attached = h.Attached()
	}
	return st
}

// Attached reports whether eBPF TOA's programs are pinned.
func (toaHost) Attached() bool { return toa.Attached(toa.Options{}) }

// writeReporting adds the agent's and TOA's lines to a status text.
func (s *Status) writeReporting(b *strings.Builder) {
	if a := s.Agent; a != nil {
		capacity := "unknown"
		if a.Capacity != nil {
			capacity = strconv.FormatFloat(*a.Capacity, 'f', -1, 64) + "%"
		}
		fmt.Fprintf(b, "agent on %s: answers %q (capacity %s, admin %s, health %s)\n", a.Listen, a.Reply, capacity, a.Admin, a.Health)
		for _, src := range a.Sources {
			v := "no reading"
			if src.Capacity != nil {
				v = strconv.FormatFloat(*src.Capacity, 'f', 1, 64) + "%"
			}
			if src.Error != "" {
				v += " (" + src.Error + ")"
			}
			fmt.Fprintf(b, "  load %s: %s, %d readings, %d errors, %d timeouts\n", src.Name, v, src.Reads, src.Errors, src.Timeouts)
		}
		fmt.Fprintf(b, "  polls answered %d, refused %d\n", a.Answered, a.Refused)
	}
	if t := s.TOA; t != nil {
		state := "disabled"
		switch {
		case t.Enabled && t.Attached:
			state = "attached"
		case t.Enabled:
			state = "NOT attached"
		}
		fmt.Fprintf(b, "toa: %s, trusted %s\n", state, strings.Join(t.Trusted, " "))
		if t.Error != "" {
			fmt.Fprintf(b, "  last error: %s\n", t.Error)
		}
	}
}
