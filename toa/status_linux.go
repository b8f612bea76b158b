package toa

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/lvs-node/lvs-node/toa/format"
	"github.com/lvs-node/lvs-node/toa/internal/rsprog"
)

// ReadCounters reads the eBPF counters (per CPU) from the pinned map.
func ReadCounters(opts Options) (*StatsTable, error) {
	m, err := ebpf.LoadPinnedMap(mapPin(opts.pinDir(), rsprog.MapStats), &ebpf.LoadPinOptions{ReadOnly: true})
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (nothing pinned at %s)", ErrNotAttached, opts.pinDir())
	}
	if err != nil {
		return nil, fmt.Errorf("counters: %w", err)
	}
	defer m.Close()
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, err
	}
	t := &StatsTable{}
	for i := range n {
		t.CPUs = append(t.CPUs, fmt.Sprintf("CPU%d", i))
	}
	for i, name := range rsprog.Counters() {
		vals := make([]uint64, n)
		if err := m.Lookup(uint32(i), &vals); err != nil {
			return nil, fmt.Errorf("counter %s: %w", name, err)
		}
		t.Counters = append(t.Counters, Counter{Name: name, PerCPU: vals})
	}
	return t, nil
}

// Status describes eBPF TOA and the TOA modules on the host.
type Status struct {
	PinDir   string       `json:"pin_dir"`
	Attached bool         `json:"attached"`
	Hooks    []HookStatus `json:"hooks,omitempty"`
	Formats  string       `json:"formats,omitempty"`
	SaveSYN  bool         `json:"save_syn,omitempty"`
	Trusted  []string     `json:"trusted,omitempty"`
	Counters *StatsTable  `json:"counters,omitempty"`
	Slots    *SlotUse     `json:"slots,omitempty"`
	Modules  []Module     `json:"modules"`
	Problems []string     `json:"problems,omitempty"`
}

// HookStatus is one attached program.
type HookStatus struct {
	Hook    string `json:"hook"`
	Cgroup  string `json:"cgroup"`
	Program uint32 `json:"program_id"`
	Link    uint32 `json:"link_id"`
}

// ReadStatus reports what is attached and pinned, the configuration in
// the maps, the counters and the loaded TOA modules.
func ReadStatus(opts Options) (*Status, error) {
	st := &Status{PinDir: opts.pinDir(), Modules: []Module{}}
	mods, err := FindModules(opts)
	if err != nil {
		return nil, err
	}
	st.Modules = append(st.Modules, mods...)
	dir := opts.pinDir()
	if _, err := os.Stat(dir); err != nil {
		return st, nil
	}
	for _, h := range hooks() {
		l, err := link.LoadPinnedLink(linkPin(dir, h), nil)
		if err != nil {
			st.Problems = append(st.Problems, fmt.Sprintf("%s is not attached", h.short))
			continue
		}
		hs := HookStatus{Hook: h.short}
		if info, err := l.Info(); err == nil {
			hs.Program, hs.Link = uint32(info.Program), uint32(info.ID)
			if c := info.Cgroup(); c != nil {
				hs.Cgroup = cgroupPath(c.CgroupId, opts)
				if hs.Cgroup == "" {
					hs.Cgroup = fmt.Sprintf("(removed cgroup %d)", c.CgroupId)
				}
			}
		}
		l.Close()
		st.Hooks = append(st.Hooks, hs)
	}
	st.Attached = len(st.Hooks) > 0
	if m, err := ebpf.LoadPinnedMap(mapPin(dir, rsprog.MapConfig), &ebpf.LoadPinOptions{ReadOnly: true}); err == nil {
		var c rsprog.Conf
		if m.Lookup(uint32(0), &c) == nil {
			st.Formats = format.Set(c.Formats).String()
			st.SaveSYN = c.Flags&rsprog.ConfSaveSYN != 0
		}
		m.Close()
	}
	if m, err := ebpf.LoadPinnedMap(mapPin(dir, rsprog.MapTrusted), &ebpf.LoadPinOptions{ReadOnly: true}); err == nil {
		ps, err := trustedPrefixes(m)
		if err == nil {
			for _, p := range ps {
				st.Trusted = append(st.Trusted, from6(p).String())
			}
		}
		m.Close()
	}
	if t, err := ReadCounters(opts); err == nil {
		st.Counters = t
	}
	if u, err := ReadSlots(opts); err == nil {
		st.Slots = &u
	}
	if st.Attached && len(mods) > 0 {
		st.Problems = append(st.Problems, "a TOA module is loaded as well: both rewrite addresses")
	}
	return st, nil
}

// TrustedPrefixes returns the prefixes the attached programs trust.
func TrustedPrefixes(opts Options) ([]netip.Prefix, error) {
	m, err := ebpf.LoadPinnedMap(mapPin(opts.pinDir(), rsprog.MapTrusted), &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	ps, err := trustedPrefixes(m)
	for i := range ps {
		ps[i] = from6(ps[i])
	}
	return ps, err
}

// Text renders the status for people.
func (s *Status) Text() string {
	var b strings.Builder
	if s.Attached {
		fmt.Fprintf(&b, "eBPF TOA: attached (pins in %s)\n", s.PinDir)
		for _, h := range s.Hooks {
			fmt.Fprintf(&b, "  %-13s cgroup %s, program %d, link %d\n", h.Hook, h.Cgroup, h.Program, h.Link)
		}
		fmt.Fprintf(&b, "  formats       %s", s.Formats)
		if s.SaveSYN {
			b.WriteString(" (listeners save the SYN)")
		}
		b.WriteString("\n")
		tr := strings.Join(s.Trusted, " ")
		if tr == "" {
			tr = "none (every option is ignored)"
		}
		fmt.Fprintf(&b, "  trusted       %s\n", tr)
		if s.Slots != nil {
			fmt.Fprintf(&b, "  slots         %d of %d hold an open connection's address\n", s.Slots.InUse, s.Slots.Total)
		}
		if s.Counters != nil {
			for _, c := range s.Counters.Counters {
				fmt.Fprintf(&b, "  %-24s %d\n", c.Name, c.Total())
			}
		}
	} else {
		fmt.Fprintf(&b, "eBPF TOA: not attached (nothing pinned in %s)\n", s.PinDir)
	}
	if len(s.Modules) == 0 {
		b.WriteString("TOA kernel modules: none loaded\n")
	}
	for _, m := range s.Modules {
		fmt.Fprintf(&b, "TOA kernel module: %s", m.Name)
		if m.Version != "" {
			fmt.Fprintf(&b, " version %s", m.Version)
		}
		if m.SrcVersion != "" {
			fmt.Fprintf(&b, " (srcversion %s)", m.SrcVersion)
		}
		if m.RefCount != "" {
			fmt.Fprintf(&b, ", used by %s", m.RefCount)
		}
		b.WriteString("\n")
		for _, k := range sortedKeys(m.Params) {
			fmt.Fprintf(&b, "  parameter %s = %s\n", k, m.Params[k])
		}
		if m.Stats != nil {
			for _, c := range m.Stats.Counters {
				fmt.Fprintf(&b, "  %-24s %d\n", c.Name, c.Total())
			}
		} else if m.StatsFile != "" {
			fmt.Fprintf(&b, "  %s is unreadable\n", m.StatsFile)
		}
	}
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	return b.String()
}
