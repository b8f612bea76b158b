package rsagent

import (
	"github.com/lvs-node/lvs-node/internal/hostnet"

	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeKernel is an in-memory Kernel. Its sysctls are files under root, so
// the real internal/sysctls recorder works on them. String prints the whole
// state as ip(8) and sysctl(8) lines.
type fakeKernel struct {
	root string

	mu       sync.Mutex
	links    []LinkInfo
	addrs    []Addr
	routes   []Route
	fous     []hostnet.Fou
	modules  map[string]bool // available, not loaded
	loaded   map[string]bool
	watchers []chan struct{}
	adds     int // successful Add/Del calls
	// refuse holds the errors Add returns for objects (by their ip(8)
	// line), as the kernel refusing them.
	refuse map[string]error
	// stuck, when set, makes LoadModule wait until it is closed: a
	// modprobe that hangs.
	stuck chan struct{}
}

// refuseAdd makes Add of the object rendered as line fail with err (nil:
// succeed again).
func (f *fakeKernel) refuseAdd(line string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse == nil {
		f.refuse = map[string]error{}
	}
	if err == nil {
		delete(f.refuse, line)
		return
	}
	f.refuse[line] = err
}

var errFake = errors.New("fake kernel")

// newFake returns a host with lo and eth0 (10.0.0.11/24, default via
// 10.0.0.1) and the sysctls arp_ignore, arp_announce and rp_filter.
func newFake(t *testing.T) *fakeKernel {
	t.Helper()
	f := &fakeKernel{root: t.TempDir(), modules: map[string]bool{"ipip": true}}
	for _, dev := range []string{"all", "default"} {
		f.mkConf(t, dev)
	}
	f.addLink(t, LinkInfo{Name: "lo", Kind: "device", Up: true})
	f.addLink(t, LinkInfo{Name: "eth0", Kind: "veth", Up: true})
	f.addrs = []Addr{
		{Dev: "lo", Prefix: netip.MustParsePrefix("127.0.0.1/8"), Label: "lo"},
		{Dev: "eth0", Prefix: netip.MustParsePrefix("10.0.0.11/24"), Label: "eth0"},
		{Dev: "eth0", Prefix: netip.MustParsePrefix("fd00::11/64")},
	}
	f.routes = []Route{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.0.1"), Dev: "eth0"},
		{Dst: netip.MustParsePrefix("10.0.0.0/24"), Dev: "eth0", Src: netip.MustParseAddr("10.0.0.11")},
	}
	return f
}

func (f *fakeKernel) addLink(t *testing.T, l LinkInfo) {
	t.Helper()
	f.links = append(f.links, l)
	f.mkConf(t, l.Name)
}

func (f *fakeKernel) mkConf(t *testing.T, dev string) {
	if err := f.mkConfErr(dev); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeKernel) mkConfErr(dev string) error {
	dir := filepath.Join(f.root, "net/ipv4/conf", dev)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, v := range map[string]string{"arp_ignore": "0", "arp_announce": "0", "rp_filter": "2"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeKernel) Snapshot() (*Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &Snapshot{Links: slices.Clone(f.links), Addrs: slices.Clone(f.addrs), Routes: slices.Clone(f.routes), Fous: slices.Clone(f.fous)}, nil
}

func (f *fakeKernel) link(name string) int {
	return slices.IndexFunc(f.links, func(l LinkInfo) bool { return l.Name == name })
}

func (f *fakeKernel) Add(obj Object) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refuse[obj.String()]; err != nil {
		return err
	}
	switch o := obj.(type) {
	case Link:
		if f.link(o.Name) >= 0 {
			return fmt.Errorf("%w: link %s exists", errFake, o.Name)
		}
		if err := f.mkConfErr(o.Name); err != nil {
			return err
		}
		f.links = append(f.links, LinkInfo{Name: o.Name, Kind: o.Kind, Up: true})
	case LinkUp:
		i := f.link(o.Name)
		if i < 0 {
			return fmt.Errorf("%w: no link %s", errFake, o.Name)
		}
		f.links[i].Up = true
	case Addr:
		if f.link(o.Dev) < 0 {
			return fmt.Errorf("%w: no link %s", errFake, o.Dev)
		}
		if slices.ContainsFunc(f.addrs, func(a Addr) bool { return a.Dev == o.Dev && a.Prefix == o.Prefix }) {
			return fmt.Errorf("%w: address %s exists", errFake, o.Prefix)
		}
		if o.Label == "" && o.Prefix.Addr().Is4() {
			o.Label = o.Dev
		}
		f.addrs = append(f.addrs, o)
	case hostnet.Fou:
		if !f.loaded["fou"] {
			return fmt.Errorf("%w: generic netlink family fou not found", errFake)
		}
		if slices.Contains(f.fous, o) {
			return fmt.Errorf("%w: fou port %d exists", errFake, o.Port)
		}
		f.fous = append(f.fous, o)
	case Route:
		if o.Gateway.IsValid() && !(&Snapshot{Links: f.links, Addrs: f.addrs}).Connected(o.Gateway) {
			return fmt.Errorf("%w: network unreachable", errFake)
		}
		f.routes = slices.DeleteFunc(f.routes, func(r Route) bool { return r.Key() == o.Key() })
		f.routes = append(f.routes, o)
	default:
		return fmt.Errorf("%w: unknown object %T", errFake, obj)
	}
	f.adds++
	return nil
}

func (f *fakeKernel) Del(obj Object) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	switch o := obj.(type) {
	case Link:
		i := f.link(o.Name)
		if i < 0 {
			return fmt.Errorf("%w: no link %s", errFake, o.Name)
		}
		f.links = slices.Delete(f.links, i, i+1)
		f.addrs = slices.DeleteFunc(f.addrs, func(a Addr) bool { return a.Dev == o.Name })
		if err := os.RemoveAll(filepath.Join(f.root, "net/ipv4/conf", o.Name)); err != nil {
			return err
		}
		n = 1
	case LinkUp:
		i := f.link(o.Name)
		if i < 0 {
			return fmt.Errorf("%w: no link %s", errFake, o.Name)
		}
		f.links[i].Up = false
		n = 1
	case Addr:
		before := len(f.addrs)
		f.addrs = slices.DeleteFunc(f.addrs, func(a Addr) bool { return a.Dev == o.Dev && a.Prefix == o.Prefix })
		n = before - len(f.addrs)
	case hostnet.Fou:
		before := len(f.fous)
		f.fous = slices.DeleteFunc(f.fous, func(x hostnet.Fou) bool { return x == o })
		n = before - len(f.fous)
	case Route:
		before := len(f.routes)
		f.routes = slices.DeleteFunc(f.routes, func(r Route) bool { return r.Key() == o.Key() && r.Gateway == o.Gateway })
		n = before - len(f.routes)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s not found", errFake, obj)
	}
	f.adds++
	return nil
}

func (f *fakeKernel) Watch(done <-chan struct{}) (<-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{}, 1)
	f.watchers = append(f.watchers, ch)
	return ch, nil
}

// notify tells watchers that something changed (called by tests after a
// change "by hand").
func (f *fakeKernel) notify() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (f *fakeKernel) LoadModule(name string) error {
	f.mu.Lock()
	stuck := f.stuck
	f.mu.Unlock()
	if stuck != nil {
		<-stuck
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loaded[name] {
		return nil
	}
	if !f.modules[name] {
		return fmt.Errorf("%w: modprobe: module %s not found", errFake, name)
	}
	delete(f.modules, name)
	if f.loaded == nil {
		f.loaded = map[string]bool{}
	}
	f.loaded[name] = true
	// The fallback device each tunnel module creates.
	fallback := map[string]LinkInfo{"ipip": {Name: tunl0, Kind: "ipip"}, "sit": {Name: "sit0", Kind: "sit"},
		"ip_gre": {Name: "gre0", Kind: "gre"}, "ip6_tunnel": {Name: "ip6tnl0", Kind: "ip6tnl"}}
	if l, ok := fallback[name]; ok {
		if err := f.mkConfErr(l.Name); err != nil {
			return err
		}
		f.links = append(f.links, l)
	}
	return nil
}

// String prints the state: links, addresses, routes, then every sysctl.
func (f *fakeKernel) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for _, l := range f.links {
		if l.Name != "lo" {
			lines = append(lines, Link{Name: l.Name, Kind: l.Kind}.String())
		}
		state := "down"
		if l.Up {
			state = "up"
		}
		lines = append(lines, "ip link set "+l.Name+" "+state)
	}
	lines = append(lines, sortedStrings(f.addrs)...)
	lines = append(lines, sortedStrings(f.routes)...)
	lines = append(lines, sortedStrings(f.fous)...)
	var sys []string
	_ = filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(f.root, p)
		sys = append(sys, "sysctl -w "+filepath.ToSlash(rel)+"="+strings.TrimSpace(string(b)))
		return nil
	})
	slices.Sort(sys)
	return strings.Join(append(lines, sys...), "\n") + "\n"
}

// sortedStrings renders objects sorted, one per line.
func sortedStrings[T fmt.Stringer](objs []T) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.String())
	}
	slices.Sort(out)
	return out
}
