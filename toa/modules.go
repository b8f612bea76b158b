package toa

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Module is a loaded TOA kernel module.
type Module struct {
	Name       string            `json:"name"`
	Version    string            `json:"version,omitempty"`
	SrcVersion string            `json:"srcversion,omitempty"`
	RefCount   string            `json:"refcnt,omitempty"`
	Params     map[string]string `json:"parameters,omitempty"`
	// StatsFile is its /proc/net statistics file, if it has one.
	StatsFile string      `json:"stats_file,omitempty"`
	Stats     *StatsTable `json:"stats,omitempty"`
}

// moduleName matches the names TOA modules are built under: toa, vtoa,
// and vendor variants such as xx_toa or toa_xx.
func moduleName() *regexp.Regexp { return regexp.MustCompile(`^([a-z0-9]+_)?v?toa(_[a-z0-9]+)?$`) }

// statsFiles are the modules' statistics files and the module each
// usually belongs to.
func statsFiles() [][2]string {
	return [][2]string{{"/proc/net/toa_stats", "toa"}, {"/proc/net/vtoa_stats", "vtoa"}}
}

// FindModules lists the loaded TOA modules under the root: those in
// /sys/module with a TOA name, and whoever provides /proc/net/toa_stats
// or /proc/net/vtoa_stats.
func FindModules(opts Options) ([]Module, error) {
	var mods []Module
	ents, err := os.ReadDir(opts.path("/sys/module"))
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("modules: %w", err)
	}
	re := moduleName()
	for _, e := range ents {
		if !re.MatchString(e.Name()) {
			continue
		}
		dir := opts.path(filepath.Join("/sys/module", e.Name()))
		// Built-in modules without state show no initstate; loaded
		// ones say "live".
		if st, err := os.ReadFile(filepath.Join(dir, "initstate")); err == nil && strings.TrimSpace(string(st)) != "live" {
			continue
		}
		m := Module{Name: e.Name(), Params: map[string]string{}}
		m.Version = readTrim(filepath.Join(dir, "version"))
		m.SrcVersion = readTrim(filepath.Join(dir, "srcversion"))
		m.RefCount = readTrim(filepath.Join(dir, "refcnt"))
		if ps, err := os.ReadDir(filepath.Join(dir, "parameters")); err == nil {
			for _, p := range ps {
				m.Params[p.Name()] = readTrim(filepath.Join(dir, "parameters", p.Name()))
			}
		}
		mods = append(mods, m)
	}
	for _, sf := range statsFiles() {
		b, err := os.ReadFile(opts.path(sf[0]))
		if err != nil {
			continue
		}
		t, perr := ParseStatsTable(string(b))
		i := slices.IndexFunc(mods, func(m Module) bool { return m.Name == sf[1] && m.StatsFile == "" })
		if i < 0 {
			i = slices.IndexFunc(mods, func(m Module) bool { return m.StatsFile == "" })
		}
		if i < 0 {
			mods = append(mods, Module{Name: "(unknown module)"})
			i = len(mods) - 1
		}
		mods[i].StatsFile = sf[0]
		if perr == nil {
			mods[i].Stats = t
		}
	}
	return mods, nil
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// StatsTable is a table of per-CPU counters in the layout of the
// modules' /proc/net/toa_stats: a header of CPU columns, then one line
// per counter.
type StatsTable struct {
	CPUs     []string  `json:"cpus"`
	Counters []Counter `json:"counters"`
}

// Counter is one named counter with its value on each CPU.
type Counter struct {
	Name   string   `json:"name"`
	PerCPU []uint64 `json:"per_cpu"`
}

// Total sums the counter over the CPUs.
func (c Counter) Total() uint64 {
	var t uint64
	for _, v := range c.PerCPU {
		t += v
	}
	return t
}

// Get returns the total of counter name, and whether it is present.
func (t *StatsTable) Get(name string) (uint64, bool) {
	for _, c := range t.Counters {
		if c.Name == name {
			return c.Total(), true
		}
	}
	return 0, false
}

// ParseStatsTable reads the modules' /proc/net/toa_stats layout.
func ParseStatsTable(s string) (*StatsTable, error) {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return nil, fmt.Errorf("toa_stats: empty")
	}
	t := &StatsTable{CPUs: strings.Fields(lines[0])}
	for n, line := range lines[1:] {
		name, vals, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("toa_stats line %d: no colon in %q", n+2, line)
		}
		c := Counter{Name: strings.TrimSpace(name)}
		for _, f := range strings.Fields(vals) {
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("toa_stats line %d: %w", n+2, err)
			}
			c.PerCPU = append(c.PerCPU, v)
		}
		if len(c.PerCPU) != len(t.CPUs) {
			return nil, fmt.Errorf("toa_stats line %d: %d values for %d CPUs", n+2, len(c.PerCPU), len(t.CPUs))
		}
		t.Counters = append(t.Counters, c)
	}
	return t, nil
}

// Format prints the table in the modules' layout.
func (t *StatsTable) Format() string {
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", 34))
	for _, c := range t.CPUs {
		fmt.Fprintf(&b, "%-11s", c)
	}
	b.WriteByte('\n')
	for _, c := range t.Counters {
		fmt.Fprintf(&b, "%-25s:", c.Name)
		for _, v := range c.PerCPU {
			fmt.Fprintf(&b, "%10d ", v)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
