package director

import (
	"fmt"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// KernelCaps is what the running kernel can do, as far as a configuration
// needs to know (an *ipvs.KernelFiles; an ipvstest.Kernel in tests).
type KernelCaps interface {
	// Module says whether the kernel can load a module, and why.
	Module(name string) (ipvs.Availability, string)
	// Release is the kernel's release (uname -r).
	Release() (string, error)
}

// CheckHost checks cfg against the kernel it is to run on: every
// scheduler must be one the kernel can load (ip_vs_twos is missing from
// many distribution kernels), and tunnel types other than ipip need Linux
// 5.3 (older kernels ignore them: the real server would silently be IPIP).
// What the kernel's files cannot tell (no /lib/modules for the running
// kernel) is no problem. Problems are config.Errors naming the key.
// lvs-node check, the start of the daemon and --once, and every reload
// run it; a running daemon refuses a reload it fails.
func CheckHost(cfg *Config, doc *config.Doc, k KernelCaps) error {
	if k == nil {
		return nil
	}
	var errs config.Errors
	type verdict struct {
		a   ipvs.Availability
		why string
	}
	seen := map[string]verdict{}
	release, relErr := k.Release()
	tunOK, tunKnown := ipvs.TunnelTypesSupported(release)
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		p := config.Index("virtual_services", i)
		mod := ipvs.SchedulerModule(vs.Scheduler)
		v, ok := seen[mod]
		if !ok {
			v.a, v.why = k.Module(mod)
			seen[mod] = v
		}
		if v.a == ipvs.Unavailable {
			errs = append(errs, doc.Errorf(config.Join(p, "scheduler"), "scheduler %s cannot be used on this host: %s", vs.Scheduler, v.why))
		}
		if relErr != nil || !tunKnown || tunOK {
			continue
		}
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			if rs.forward == ipvs.Tunnel && rs.tunType != ipvs.TunIPIP {
				errs = append(errs, doc.Errorf(config.Join(config.Index(config.Join(p, "real_servers"), j), "tunnel_type"),
					"this host runs Linux %s, which ignores tunnel_type %s and would send IPIP instead: %v", release, rs.TunnelType, ipvs.ErrTunnelTypes))
			}
		}
	}
	return errs.Err()
}

// HostNotes are remarks on cfg that are not errors: a setup that works
// only with help from outside lvs-node. Each names the key it is about.
func HostNotes(cfg *Config, doc *config.Doc) []string {
	out := quiesceNotes(cfg, doc)
	if cfg.Director.VIPInterface != "lo" {
		return out
	}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if !vs.BindVIP || !vs.vip.Is6() {
			continue
		}
		p := config.Join(config.Index("virtual_services", i), "bind_vip")
		out = append(out, fmt.Sprintf("%s: %s: IPv6 VIP %s is bound on lo, where neighbour discovery does not answer for it: "+
			"route %s to this director (a static route or BGP), or set director.vip_interface to the interface that faces the clients",
			doc.Pos(p), p, vs.vip, vs.vip))
	}
	return out
}

// checkHost runs CheckHost for a reload and logs the HostNotes.
func (d *Daemon) checkHost(cfg *Config, doc *config.Doc) error {
	for _, n := range HostNotes(cfg, doc) {
		d.Log.Warn("note", "note", n)
	}
	return CheckHost(cfg, doc, d.Engine.deps.Caps)
}

// quiesceNotes says, once, that services whose failed real servers are
// quiesced need expire_nodest_conn: without it a new connection that
// matches an entry IPVS keeps for a quiesced server (a client port used
// again) goes to that server.
func quiesceNotes(cfg *Config, doc *config.Doc) []string {
	if e := cfg.Director.Sysctls.ExpireNodestConn; e != nil && *e {
		return nil
	}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		for j := range vs.RealServers {
			if r := vs.rule(j); r.Checked && r.OnFailure == Quiesce {
				p := config.Join(config.Index("virtual_services", i), "health_check")
				return []string{fmt.Sprintf("%s: %s: failed real servers are quiesced (weight 0), but a new connection that matches an entry IPVS still keeps for one "+
					"(a client port used again) goes to it: set director.sysctls.expire_nodest_conn: true to have IPVS schedule such connections anew",
					doc.Pos(p), p)}
			}
		}
	}
	return nil
}
