package rsagent

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Status is what the daemon reports on its control socket: what is
// applied, the recorded originals and the repairs so far.
type Status struct {
	Config    string         `json:"config,omitempty"`
	VIPs      []VIPStatus    `json:"vips"`
	Sysctls   []SysctlStatus `json:"sysctls"`
	Added     []string       `json:"added,omitempty"`
	Replaced  []string       `json:"replaced,omitempty"`
	Repairs   uint64         `json:"repairs"`
	Reloads   uint64         `json:"reloads"`
	LastError string         `json:"last_error,omitempty"`

	Agent *AgentStatus `json:"agent,omitempty"` // status_reporting.go
	TOA   *TOAStatus   `json:"toa,omitempty"`
	// Busy is set when the daemon was in a kernel call and this status
	// is the last one it computed.
	Busy string `json:"busy,omitempty"`
}

// VIPStatus is one configured VIP.
type VIPStatus struct {
	Address string `json:"address"`
	Mode    string `json:"mode"`
	// Where is the device that holds a dr or tun VIP, or the routes
	// (prefix via gateway) of a nat VIP.
	Where []string `json:"where"`
	// Applied reports whether the address (or every route) is in place.
	Applied bool `json:"applied"`
}

// SysctlStatus is one sysctl lvs-node set or recorded.
type SysctlStatus struct {
	Key      string `json:"key"`
	Want     string `json:"want,omitempty"` // empty: no longer wanted, restored
	Current  string `json:"current"`
	Original string `json:"original"`
	// Recorded reports whether an original is on file (it is recorded
	// before the first change only).
	Recorded bool `json:"recorded"`
}

// status describes the host as the agent sees it. It reads the kernel,
// so it runs on the goroutine that owns the agent's namespace.
func (a *Agent) status() (*Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	snap, err := a.k.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("read network state: %w", err)
	}
	d := want(a.cfg)
	st := &Status{VIPs: []VIPStatus{}, Sysctls: []SysctlStatus{}}
	for _, v := range a.cfg.Realserver.VIPs {
		vs := VIPStatus{Address: v.Addr.String(), Mode: v.Mode, Where: []string{}}
		if v.Mode == ModeNAT {
			vs.Applied = true
			for _, p := range v.Prefixes {
				vs.Where = append(vs.Where, p.String()+" via "+v.GatewayIP.String())
				if r, ok := snap.RouteTo(p, 0); !ok || r.Gateway != v.GatewayIP {
					vs.Applied = false
				}
			}
		} else {
			dev := d.devOfVIP[v.Addr]
			vs.Where = append(vs.Where, dev)
			vs.Applied = snap.HasAddr(Addr{Dev: dev, Prefix: netip.PrefixFrom(v.Addr, v.Addr.BitLen())})
		}
		st.VIPs = append(st.VIPs, vs)
	}
	orig := a.sys.Originals()
	wanted := map[string]string{}
	for _, s := range slices.Concat(d.sysAll, d.sysDev) {
		wanted[s.key] = s.value
	}
	keys := slices.Sorted(maps.Keys(wanted))
	for _, k := range slices.Sorted(maps.Keys(orig)) {
		if _, ok := wanted[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		cur, err := a.sys.Get(k)
		if err != nil {
			cur = "? (" + err.Error() + ")"
		}
		o, rec := orig[k]
		st.Sysctls = append(st.Sysctls, SysctlStatus{Key: k, Want: wanted[k], Current: cur, Original: o, Recorded: rec})
	}
	for _, l := range a.led.Rec.Links {
		st.Added = append(st.Added, l.String())
	}
	for _, u := range a.led.Rec.Ups {
		st.Added = append(st.Added, u.String())
	}
	for _, x := range a.led.Rec.Addrs {
		st.Added = append(st.Added, x.String())
	}
	for _, r := range a.led.Rec.Routes {
		st.Added = append(st.Added, r.String())
	}
	for _, r := range a.led.Rec.Replaced {
		st.Replaced = append(st.Replaced, r.String())
	}
	return st, nil
}

// Text renders the status for people, one fact a line.
func (s *Status) Text() string {
	var b strings.Builder
	if s.Busy != "" {
		fmt.Fprintf(&b, "busy: %s\n", s.Busy)
	}
	if s.Config != "" {
		fmt.Fprintf(&b, "config: %s\n", s.Config)
	}
	b.WriteString("vips:\n")
	for _, v := range s.VIPs {
		state := "applied"
		if !v.Applied {
			state = "MISSING"
		}
		fmt.Fprintf(&b, "  %s %s on %s: %s\n", v.Address, v.Mode, strings.Join(v.Where, ", "), state)
	}
	b.WriteString("sysctls (current, recorded original):\n")
	for _, x := range s.Sysctls {
		o := "not recorded (never changed)"
		if x.Recorded {
			o = "original " + x.Original
		}
		w := ""
		if x.Want == "" {
			w = " (no longer wanted)"
		} else if x.Want != x.Current {
			w = " (want " + x.Want + ")"
		}
		fmt.Fprintf(&b, "  %s = %s%s, %s\n", x.Key, x.Current, w, o)
	}
	if len(s.Added) > 0 {
		b.WriteString("added by lvs-node (removed by down):\n")
		for _, l := range s.Added {
			b.WriteString("  " + l + "\n")
		}
	}
	if len(s.Replaced) > 0 {
		b.WriteString("replaced routes (put back by down):\n")
		for _, l := range s.Replaced {
			b.WriteString("  " + l + "\n")
		}
	}
	s.writeReporting(&b)
	fmt.Fprintf(&b, "repairs: %d\nreloads: %d\n", s.Repairs, s.Reloads)
	if s.LastError != "" {
		fmt.Fprintf(&b, "last error: %s\n", s.LastError)
	}
	return b.String()
}
