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
			want = append(want, kv{ipv6Forwarding, "1"})
		}
	case *s.IPForward:
		want = append(want, kv{"net/ipv4/ip_forward", "1"}, kv{ipv6Forwarding, "1"})
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
	if s.SloppyTCP != nil {
		want = append(want, kv{"net/ipv4/vs/sloppy_tcp", b(*s.SloppyTCP)})
	}
	if s.SloppySCTP != nil {
		want = append(want, kv{"net/ipv4/vs/sloppy_sctp", b(*s.SloppySCTP)})
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
		if x.k == ipv6Forwarding && x.v == "1" {
			if err := e.keepRouterAdvertisements(); err != nil {
				return err
			}
		}
	}
	for _, x := range want {
		if err := e.deps.Sysctls.Set(x.k, x.v); err != nil {
			return fmt.Errorf("set sysctl %s: %w", x.k, err)
		}
	}
	return nil
}

const ipv6Forwarding = "net/ipv6/conf/all/forwarding"

// keepRouterAdvertisements runs before lvs-node turns IPv6 forwarding on.
// A forwarding host ignores router advertisements on every interface
// whose accept_ra is 1: one that got its address or default route by
// SLAAC would lose it when they expire. Each such interface (and default,
// which new interfaces inherit) gets accept_ra 2, which accepts them even
// when forwarding; the original is recorded and restored by down, after
// forwarding. When forwarding is on already, the host's own setup is
// left as it is.
func (e *Engine) keepRouterAdvertisements() error {
	s := e.deps.Sysctls
	if cur, err := s.Get(ipv6Forwarding); err != nil || cur == "1" {
		return nil // no IPv6, or forwarding set up by someone else
	}
	devs, err := s.List("net/ipv6/conf")
	if err != nil {
		return fmt.Errorf("IPv6 forwarding: %w", err)
	}
	for _, dev := range devs {
		if dev == "all" || dev == "lo" {
			continue
		}
		key := "net/ipv6/conf/" + dev + "/accept_ra"
		if v, err := s.Get(key); err != nil || v != "1" {
			continue
		}
		if err := s.Set(key, "2"); err != nil {
			return fmt.Errorf("keep router advertisements on %s before turning IPv6 forwarding on: %w", dev, err)
		}
		e.log.Info("accept_ra set to 2 so that router advertisements still count once IPv6 forwarding is on", "interface", dev)
	}
	return nil
}
