package director

import (
	"fmt"
	"net/netip"
)

// VIPState says whether one VIP may be announced to the routers, and why
// not when it may not.
type VIPState struct {
	VIP      netip.Addr
	Announce bool
	Reason   string // why the VIP is withheld
}

// AnnounceVIPs decides, VIP by VIP in the order of the file, which VIPs
// of cfg the director may announce given its inputs: a VIP is announced
// when every virtual service on it has at least minUp real servers that
// take new connections (effective weight above 0: up, not drained, not
// in maintenance; see EffectiveWeight). Firewall-mark services without a
// vip are not announced. The director-wide conditions (in sync, HA
// role, drain) are the caller's.
func AnnounceVIPs(cfg *Config, in *Inputs, minUp int) []VIPState {
	var out []VIPState
	pos := map[netip.Addr]int{}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if !vs.vip.IsValid() {
			continue
		}
		k, ok := pos[vs.vip]
		if !ok {
			k = len(out)
			pos[vs.vip] = k
			out = append(out, VIPState{VIP: vs.vip, Announce: true})
		}
		if up := vs.takingConnections(in); up < minUp && out[k].Announce {
			out[k].Announce = false
			out[k].Reason = fmt.Sprintf("service %s has %d of %d real servers taking connections (min_up %d)", vs.Name, up, len(vs.RealServers), minUp)
		}
	}
	return out
}

// takingConnections counts the real servers of vs whose effective weight
// is above 0, after the quorum rule (weights.go): the sorry server does not
// count.
func (vs *VirtualService) takingConnections(in *Inputs) int {
	w := vs.weights(in)
	n := 0
	for j := range vs.RealServers {
		if w.servers == nil {
			if *vs.RealServers[j].Weight > 0 {
				n++
			}
			continue
		}
		if e := w.servers[j]; e.Present && e.Weight > 0 {
			n++
		}
	}
	return n
}
