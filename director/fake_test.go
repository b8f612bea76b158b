package director

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/lvs-node/lvs-node/internal/hostnet"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvsadm"
)

// formatTable prints t as ipvsadm rules in the table's order, with the
// real servers' thresholds (FormatOp of an addition per entry).
func formatTable(t *ipvs.Table) string {
	var b strings.Builder
	for _, s := range t.Services {
		b.WriteString(FormatOp(ipvs.Op{Kind: ipvs.AddService, Service: s.Service}) + "\n")
		for _, d := range s.Dests {
			b.WriteString(FormatOp(ipvs.Op{Kind: ipvs.AddDest, Service: s.Service, Dest: d.Destination}) + "\n")
		}
	}
	return b.String()
}

// saveTable prints t as ipvsadm-save -n does, in ipvsadm's order: the
// form ipvstest.Kernel prints itself in.
func saveTable(t *ipvs.Table) string {
	var b strings.Builder
	_ = ipvsadm.WriteSave(&b, t)
	return b.String()
}

type fakeMarker struct {
	rules   []MarkRule
	exists  bool
	sets    int
	failSet error
}

func (m *fakeMarker) Set(rules []MarkRule) error {
	if m.failSet != nil {
		return m.failSet
	}
	m.rules = slices.Clone(rules)
	m.exists = true
	m.sets++
	return nil
}

func (m *fakeMarker) Delete() error {
	m.rules, m.exists = nil, false
	return nil
}

// String prints one nft-like line per rule.
func (m *fakeMarker) String() string {
	var b strings.Builder
	if !m.exists {
		return ""
	}
	for _, r := range m.rules {
		ports := make([]string, len(r.Ports))
		for i, p := range r.Ports {
			ports[i] = fmt.Sprint(p)
		}
		fmt.Fprintf(&b, "%s daddr %s %s dport {%s} mark set %#x/%#x\n", r.Name, r.VIP, r.Protocol, strings.Join(ports, ","), r.Mark, r.Mask)
	}
	return b.String()
}

type fakeSysctls struct {
	vals  map[string]string
	orig  map[string]string
	order []string
	sets  int // Set calls
}

func newFakeSysctls(initial map[string]string) *fakeSysctls {
	return &fakeSysctls{vals: initial, orig: map[string]string{}}
}

func (s *fakeSysctls) Set(key, value string) error {
	s.sets++
	if _, ok := s.vals[key]; !ok {
		return fmt.Errorf("%s: no such file or directory", key)
	}
	if _, ok := s.orig[key]; !ok {
		s.orig[key] = s.vals[key]
		s.order = append(s.order, key)
	}
	s.vals[key] = value
	return nil
}

func (s *fakeSysctls) Get(key string) (string, error) {
	v, ok := s.vals[key]
	if !ok {
		return "", fmt.Errorf("%s: no such file or directory", key)
	}
	return v, nil
}

func (s *fakeSysctls) List(dir string) ([]string, error) {
	var out []string
	for k := range s.vals {
		if rest, ok := strings.CutPrefix(k, dir+"/"); ok {
			name, _, _ := strings.Cut(rest, "/")
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	if out == nil {
		return nil, fmt.Errorf("%s: no such file or directory", dir)
	}
	sort.Strings(out)
	return out, nil
}

// Restore puts the originals back, the most recent change first.
func (s *fakeSysctls) Restore() error {
	for _, k := range slices.Backward(s.order) {
		s.vals[k] = s.orig[k]
	}
	s.orig, s.order = map[string]string{}, nil
	return nil
}

// String prints every value as sysctl -w lines, sorted by key.
func (s *fakeSysctls) String() string {
	keys := make([]string, 0, len(s.vals))
	for k := range s.vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "sysctl -w %s=%s\n", strings.ReplaceAll(k, "/", "."), s.vals[k])
	}
	return b.String()
}

// fakeHost holds the addresses of the director's interfaces.
type fakeHost struct {
	addrs []hostnet.Addr
}

func (h *fakeHost) HasAddr(a hostnet.Addr) (bool, error) {
	return slices.ContainsFunc(h.addrs, func(x hostnet.Addr) bool { return x.Dev == a.Dev && x.Prefix == a.Prefix }), nil
}

func (h *fakeHost) Add(obj hostnet.Object) error {
	a := obj.(hostnet.Addr)
	if ok, _ := h.HasAddr(a); ok {
		return syscall.EEXIST
	}
	h.addrs = append(h.addrs, a)
	return nil
}

func (h *fakeHost) Del(obj hostnet.Object) error {
	a := obj.(hostnet.Addr)
	if ok, _ := h.HasAddr(a); !ok {
		return syscall.EADDRNOTAVAIL
	}
	h.addrs = slices.DeleteFunc(h.addrs, func(x hostnet.Addr) bool { return x.Dev == a.Dev && x.Prefix == a.Prefix })
	return nil
}

// String prints ip addr add lines, sorted.
func (h *fakeHost) String() string {
	lines := make([]string, len(h.addrs))
	for i, a := range h.addrs {
		lines[i] = a.String()
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// formatWithStats prints t as ipvsadm rules in its order, each with the
// counters a snapshot carries, and whether the hashed flag is set.
func formatWithStats(t *ipvs.Table) string {
	var b strings.Builder
	for _, s := range t.Services {
		fmt.Fprintf(&b, "%s conns=%d hashed=%t\n", FormatOp(ipvs.Op{Kind: ipvs.AddService, Service: s.Service}), s.Stats.Conns, s.Flags&ipvs.FlagHashed != 0)
		for _, d := range s.Dests {
			fmt.Fprintf(&b, "%s conns=%d active=%d\n", FormatOp(ipvs.Op{Kind: ipvs.AddDest, Service: s.Service, Dest: d.Destination}), d.Stats.Conns, d.ActiveConns)
		}
	}
	return b.String()
}
