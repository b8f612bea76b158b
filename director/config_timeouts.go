package director

import (
	"time"

	"github.com/lvs-node/lvs-node/internal/config"
)

// Timeouts are IPVS's connection timeouts (ipvsadm --set), director-wide:
// how long an idle established TCP connection, a TCP connection after its
// FIN and a UDP "connection" stay in the table. An unset field leaves the
// kernel's value as it is.
type Timeouts struct {
	TCP    *config.Duration `yaml:"tcp"`
	TCPFin *config.Duration `yaml:"tcp_fin"`
	UDP    *config.Duration `yaml:"udp"`
}

// maxTimeout is ipvsadm's MAX_TIMEOUT (31 days).
const maxTimeout = 31 * 24 * time.Hour

// timeouts validates director.timeouts.
func (v *validator) timeouts(t *Timeouts) {
	if t == nil {
		return
	}
	for _, f := range []struct {
		key string
		d   *config.Duration
	}{{"tcp", t.TCP}, {"tcp_fin", t.TCPFin}, {"udp", t.UDP}} {
		if f.d == nil {
			continue
		}
		p := config.Join("director.timeouts", f.key)
		switch d := f.d.D(); {
		case d < time.Second:
			v.errorf(p, "must be at least 1s, got %s", f.d)
		case d%time.Second != 0:
			v.errorf(p, "must be whole seconds (IPVS counts seconds), got %s", f.d)
		case d > maxTimeout:
			v.errorf(p, "must be at most 31 days (744h), got %s", f.d)
		}
	}
}
