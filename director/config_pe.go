package director

import (
	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// Persistence engines (ipvsadm --pe) the kernel has: sip makes a SIP
// call (its Call-ID) rather than the client address stick to one real
// server; it reads SIP over UDP.
func persistenceEngines() []string { return []string{"sip"} }

// persistenceEngine validates persistence.engine of vs.
func (v *validator) persistenceEngine(vs *VirtualService, p string) {
	if vs.Persistence == nil || vs.Persistence.Engine == "" {
		return
	}
	k := config.Join(config.Join(p, "persistence"), "engine")
	e := vs.Persistence.Engine
	known := false
	for _, n := range persistenceEngines() {
		known = known || n == e
	}
	switch {
	case !known:
		v.errorf(k, "unknown persistence engine %q (the kernel has: sip)", e)
	case vs.FWMark == nil && vs.Ports == nil && vs.proto != ipvs.UDP:
		v.errorf(k, "the %s engine reads SIP over UDP; this service is %s", e, vs.proto)
	}
}
