package director

import (
	"errors"
	"fmt"
	"strconv"
)

// setSysctls sets the sysctls cfg asks for; v4 and v6 tell whether it
// uses NAT (see Config.UsesNAT).
func (e *Engine) setSysctls(cfg *Config, v4, v6 bool) error {
	type kv struct{ k, v string }
	var want []kv
	s := cfg.Director.Sysctls
	switch {
	case s.IPForward == nil:
		if v4 {
			want = append(want, kv{"net/ipv4/ip_forward", "1"})
		}
		if v6 {
			want = append(want, kv{"net/ipv6/conf/all/forwarding", "1"})
		}
	case *s.IPForward:
		want = append(want, kv{"net/ipv4/ip_forward", "1"}, kv{"net/ipv6/conf/all/forwarding", "1"})
	}
	b := func(x bool) string {
		if x {
			return "1"
		}
		return "0"
	}
	if s.ExpireNodestConn != nil {
		want = append(want, kv{"net/ipv4/vs/expire_nodest_conn", b(*s.ExpireNodestConn)})
	}
	if s.ExpireQuiescentTemplate != nil {
		want = append(want, kv{"net/ipv4/vs/expire_quiescent_template", b(*s.ExpireQuiescentTemplate)})
	}
	if cfg.UsesFullNAT() {
		// IPVS keeps its connections in conntrack, where the source NAT
		// and the TOA writer find them (director/fullnat).
		want = append(want, kv{"net/ipv4/vs/conntrack", "1"})
	}
	if s.ConnReuseMode != nil {
		want = append(want, kv{"net/ipv4/vs/conn_reuse_mode", strconv.FormatInt(*s.ConnReuseMode, 10)})
	}
	if len(want) == 0 {
		return nil
	}
	if e.deps.Sysctls == nil {
		return errors.New("sysctls are configured but no sysctl store is available")
	}
	for _, x := range want {
		if err := e.deps.Sysctls.Set(x.k, x.v); err != nil {
			return fmt.Errorf("set sysctl %s: %w", x.k, err)
		}
	}
	return nil
}
