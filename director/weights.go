package director

import (
	"cmp"
	"fmt"
	"slices"
)

// serviceWeights is what the inputs make of one virtual service: the
// effective weight of each real server, and whether the sorry server is
// in the table.
//
// A real server is serving when its effective weight (EffectiveWeight)
// is above 0. The service needs quorum.min_up serving real servers, or
// one when it has a sorry server and no quorum block. When fewer serve:
//
//   - with a sorry server, the sorry server is added (weight 1) and the
//     real servers still serving are quiesced (weight 0: established
//     connections finish), so that new connections all get the sorry
//     page; the sorry server is removed, and the real servers get their
//     weights back, as soon as enough serve again;
//   - without one (quorum alone), the real servers taken out by a failed
//     health check are kept at the weight they would have if healthy,
//     those that failed last first, until min_up serve: the director
//     never takes out more real servers than the quorum allows, which
//     protects a site from a fault of the checks themselves (a network
//     partition between the director and every real server). Real
//     servers drained by the operator or their agent, or not yet checked
//     up (pending), are never kept.
//
// The engine logs each change of the quorum (see Monitor).
type serviceWeights struct {
	// servers holds the effective weight of each real server in order;
	// nil when every one gets its configured weight.
	servers []Effective
	serving int  // real servers serving before the quorum rule
	need    int  // serving real servers the service needs (0: any number)
	sorry   bool // the sorry server is in the table
	kept    int  // failed real servers kept for the quorum
}

// quorumMet reports whether enough real servers serve.
func (w *serviceWeights) quorumMet() bool { return w.serving >= w.need }

// weights computes the effective weights of vs given in (nil: none).
func (vs *VirtualService) weights(in *Inputs) serviceWeights {
	var w serviceWeights
	if vs.Quorum != nil {
		w.need = vs.Quorum.MinUp
	} else if vs.sorry != nil {
		w.need = 1
	}
	if in.empty() && !vs.checked && w.need == 0 {
		return w // every real server at its configured weight
	}
	w.servers = make([]Effective, len(vs.RealServers))
	for j := range vs.RealServers {
		e := EffectiveWeight(int32(*vs.RealServers[j].Weight), in.Of(vs.ref(j)), vs.rule(j))
		w.servers[j] = e
		if e.Present && e.Weight > 0 {
			w.serving++
		}
	}
	if w.quorumMet() {
		return w
	}
	if vs.sorry != nil {
		w.sorry = true
		why := fmt.Sprintf("quorum lost (%d of %d serving): the sorry server serves", w.serving, w.need)
		if vs.Quorum == nil {
			why = "no real server serving: the sorry server serves"
		}
		for j := range w.servers {
			if e := &w.servers[j]; e.Present && e.Weight > 0 {
				e.Weight, e.Reason = 0, why
			}
		}
		return w
	}
	// Keep the real servers that failed last.
	type candidate struct {
		j int
		e Effective
		h Health
	}
	var cands []candidate
	for j := range vs.RealServers {
		si := in.Of(vs.ref(j))
		if si.Health == nil || si.Health.State != Down {
			continue
		}
		h := *si.Health
		si.Health = &Health{State: Up}
		if e := EffectiveWeight(int32(*vs.RealServers[j].Weight), si, vs.rule(j)); e.Weight > 0 {
			cands = append(cands, candidate{j, e, h})
		}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return -a.h.Since.Compare(b.h.Since) })
	for _, c := range cands[:min(len(cands), w.need-w.serving)] {
		c.e.Reason = fmt.Sprintf("kept for the quorum (min_up %d) although down", w.need)
		if c.h.Reason != "" {
			c.e.Reason += ": " + c.h.Reason
		}
		w.servers[c.j] = c.e
		w.kept++
	}
	return w
}

// serviceState is a summary of serviceWeights for logs and status.
type serviceState struct {
	Serving int  `json:"serving"`
	Need    int  `json:"need,omitempty"`
	Met     bool `json:"met"`
	Sorry   bool `json:"sorry_active"`
	Kept    int  `json:"kept,omitempty"`
}

func (w *serviceWeights) state() serviceState {
	return serviceState{Serving: w.serving, Need: w.need, Met: w.quorumMet(), Sorry: w.sorry, Kept: w.kept}
}

// describe says what a quorum state means, for a log line.
func (s serviceState) describe() string {
	switch {
	case s.Met:
		return fmt.Sprintf("quorum met: %d real servers serving (min %d)", s.Serving, s.Need)
	case s.Sorry:
		return fmt.Sprintf("quorum lost: %d of %d real servers serving; the sorry server takes new connections", s.Serving, s.Need)
	}
	return fmt.Sprintf("quorum lost: %d of %d real servers serving; keeping %d failed real servers in", s.Serving, s.Need, s.Kept)
}

// quorumStates returns the state of every service of cfg that has a
// quorum or a sorry server, by name.
func quorumStates(cfg *Config, in *Inputs) map[string]serviceState {
	out := map[string]serviceState{}
	if cfg == nil {
		return out
	}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if vs.Quorum == nil && vs.sorry == nil {
			continue
		}
		w := vs.weights(in)
		out[vs.Name] = w.state()
	}
	return out
}

// compareRefs orders real servers by service, address and port.
func compareRefs(a, b ServerRef) int {
	return cmp.Or(cmp.Compare(a.Service, b.Service), a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}
