package rsagent

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/state"
	"github.com/lvs-node/lvs-node/internal/sysctls"
)

// State file names inside state_dir.
const (
	RecordFile  = "realserver.json"
	SysctlsFile = "realserver-sysctls.json"
)

// Sysctls is what rsagent needs from internal/sysctls.Recorder.
type Sysctls interface {
	Get(key string) (string, error)
	// Apply sets key, recording its original before the first change, and
	// reports whether it changed anything.
	Apply(key, value string) (bool, error)
	// Restore puts every recorded original back.
	Restore() error
	// RestoreKeys puts back the recorded originals of keys only.
	RestoreKeys(keys ...string) error
	// Originals returns the recorded originals.
	Originals() map[string]string
}

// record is what lvs-node added to the kernel, saved before each change.
type record struct {
	Links    []Link   `json:"links,omitempty"`
	Ups      []LinkUp `json:"ups,omitempty"`
	Addrs    []Addr   `json:"addrs,omitempty"`
	Routes   []Route  `json:"routes,omitempty"`
	Replaced []Route  `json:"replaced,omitempty"` // originals of replaced routes
}

func (r *record) empty() bool {
	return len(r.Links)+len(r.Ups)+len(r.Addrs)+len(r.Routes)+len(r.Replaced) == 0
}

// Agent applies and reverts one real-server configuration.
type Agent struct {
	cfg     *Config
	doc     *config.Doc
	k       Kernel
	sys     Sysctls
	log     *slog.Logger
	recPath string

	mu  sync.Mutex
	rec record
}

// New returns an Agent for cfg (validated by LoadConfig) that changes the
// host through k and sys, loading the record of an earlier run from the
// state directory.
func New(cfg *Config, doc *config.Doc, k Kernel, sys Sysctls, log *slog.Logger) (*Agent, error) {
	if log == nil {
		log = discardLogger()
	}
	a := &Agent{cfg: cfg, doc: doc, k: k, sys: sys, log: log,
		recPath: filepath.Join(cfg.Realserver.StateDir, RecordFile)}
	if _, err := state.Load(a.recPath, &a.rec); err != nil {
		return nil, fmt.Errorf("load real-server record: %w", err)
	}
	return a, nil
}

// OpenSysctls opens the sysctl recorder for cfg's state directory.
func OpenSysctls(cfg *Config, opts ...sysctls.Option) (*sysctls.Recorder, error) {
	return sysctls.Open(filepath.Join(cfg.Realserver.StateDir, SysctlsFile), opts...)
}

type kv struct{ key, value string }

func (s kv) String() string { return "sysctl -w " + s.key + "=" + s.value }

// desired is the complete state a configuration asks for.
type desired struct {
	links     []Link
	ups       []LinkUp
	sysAll    []kv // on all: applied before anything else
	sysDev    []kv // per device: applied once the devices exist
	addrs     []Addr
	routes    []Route
	devOfVIP  map[netip.Addr]string
	ipipNeeds bool
}

func confKey(dev, name string) string { return "net/ipv4/conf/" + dev + "/" + name }

// want computes the desired state of cfg. It is a pure function.
func want(cfg *Config) desired {
	rs := cfg.Realserver
	d := desired{devOfVIP: map[netip.Addr]string{}}
	arpDevs := []string{}
	addDev := func(dev string) {
		if !slices.Contains(arpDevs, dev) {
			arpDevs = append(arpDevs, dev)
		}
	}
	arp4 := false
	for _, v := range rs.VIPs {
		var dev string
		switch {
		case v.Mode == ModeDR && v.Interface == InterfaceDummy:
			dev = rs.DummyInterface
			if !slices.Contains(d.links, Link{Name: dev, Kind: "dummy"}) {
				d.links = append(d.links, Link{Name: dev, Kind: "dummy"})
				d.ups = append(d.ups, LinkUp{Name: dev})
			}
		case v.Mode == ModeDR:
			dev = "lo"
		case v.Mode == ModeTUN:
			dev = tunl0
			d.ipipNeeds = true
			if !slices.Contains(d.ups, LinkUp{Name: tunl0}) {
				d.ups = append(d.ups, LinkUp{Name: tunl0})
			}
		case v.Mode == ModeNAT:
			for _, p := range v.Prefixes {
				r := Route{Dst: p, Gateway: v.GatewayIP}
				if !slices.Contains(d.routes, r) {
					d.routes = append(d.routes, r)
				}
			}
			continue
		}
		d.devOfVIP[v.Addr] = dev
		a := Addr{Dev: dev, Prefix: netip.PrefixFrom(v.Addr, v.Addr.BitLen())}
		if dev == "lo" && v.Addr.Is4() {
			a.Label = LoLabel
		}
		d.addrs = append(d.addrs, a)
		if v.Addr.Is4() {
			arp4 = true
			addDev(dev)
		}
	}
	ign, ann := strconv.Itoa(*rs.ARP.Ignore), strconv.Itoa(*rs.ARP.Announce)
	if arp4 {
		for _, dev := range rs.ARP.Interfaces {
			addDev(dev)
		}
		d.sysAll = append(d.sysAll, kv{confKey("all", "arp_ignore"), ign}, kv{confKey("all", "arp_announce"), ann})
		if !slices.Contains(arpDevs, "lo") {
			arpDevs = append([]string{"lo"}, arpDevs...)
		}
	}
	if d.ipipNeeds {
		d.sysAll = append(d.sysAll, kv{confKey("all", "rp_filter"), "0"})
	}
	for _, dev := range arpDevs {
		d.sysDev = append(d.sysDev, kv{confKey(dev, "arp_ignore"), ign}, kv{confKey(dev, "arp_announce"), ann})
		if dev == tunl0 {
			d.sysDev = append(d.sysDev, kv{confKey(dev, "rp_filter"), "0"})
		}
	}
	return d
}

// preflight checks what needs the live host, before any change. It may
// load the ipip module. It returns the (possibly refreshed) snapshot.
func (a *Agent) preflight(d desired, snap *Snapshot) (*Snapshot, error) {
	var errs config.Errors
	rs := a.cfg.Realserver
	if d.ipipNeeds {
		if _, ok := snap.Link(tunl0); !ok {
			var loadErr error
			if loadErr = a.k.LoadModule("ipip"); loadErr == nil {
				s, err := a.k.Snapshot()
				if err != nil {
					return nil, err
				}
				snap = s
			}
			if _, ok := snap.Link(tunl0); !ok {
				msg := "ipip is unavailable: tunl0 is missing"
				if loadErr != nil {
					msg += fmt.Sprintf(" and %v", loadErr)
				}
				for i, v := range rs.VIPs {
					if v.Mode == ModeTUN {
						errs = append(errs, a.doc.Errorf(config.Join(config.Index("realserver.vips", i), "mode"), "%s", msg))
						break
					}
				}
			}
		}
	}
	for i, name := range rs.ARP.Interfaces {
		if _, ok := snap.Link(name); !ok {
			errs = append(errs, a.doc.Errorf(config.Index("realserver.arp.interfaces", i), "this host has no interface %s", name))
		}
	}
	for _, l := range d.links {
		if got, ok := snap.Link(l.Name); ok && got.Kind != l.Kind {
			errs = append(errs, a.doc.Errorf("realserver.dummy_interface",
				"interface %s exists and is of type %s, not %s", l.Name, got.Kind, l.Kind))
		}
	}
	for i, v := range rs.VIPs {
		if !v.Addr.IsValid() {
			continue
		}
		p := config.Index("realserver.vips", i)
		dev := d.devOfVIP[v.Addr] // "" for nat
		for _, h := range snap.Addrs {
			if h.Prefix.Addr() != v.Addr || h.Dev == dev || a.recorded(h) {
				continue
			}
			if v.Mode == ModeNAT {
				errs = append(errs, a.doc.Errorf(config.Join(p, "address"),
					"nat VIP %s is an address of this host (on %s); it belongs on the director", v.Addr, h.Dev))
			} else {
				errs = append(errs, a.doc.Errorf(config.Join(p, "address"),
					"VIP %s is already an address of this host on %s; a %s VIP must be on %s only", v.Addr, h.Dev, v.Mode, dev))
			}
			break
		}
		if v.Mode == ModeNAT && v.GatewayIP.IsValid() && !snap.connected(v.GatewayIP) {
			errs = append(errs, a.doc.Errorf(config.Join(p, "gateway"),
				"gateway %s is not on a connected network of this host", v.GatewayIP))
		}
	}
	return snap, errs.Err()
}

func (a *Agent) recorded(x Addr) bool {
	for _, r := range a.rec.Addrs {
		if r.Dev == x.Dev && r.Prefix == x.Prefix {
			return true
		}
	}
	return false
}

func (a *Agent) save() error {
	if a.rec.empty() {
		return state.Remove(a.recPath)
	}
	return state.Save(a.recPath, &a.rec)
}

// Up brings the host to the configured state and returns the changes made,
// as ip(8)/sysctl(8) lines; none when it already was. Problems that need
// the live host are found before any change and returned as config.Errors.
func (a *Agent) Up() ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := want(a.cfg)
	snap, err := a.k.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("read network state: %w", err)
	}
	if snap, err = a.preflight(d, snap); err != nil {
		return nil, err
	}
	var changes []string
	note := func(s fmt.Stringer) { changes = append(changes, s.String()) }

	// Objects added by an earlier run that the configuration no longer
	// asks for.
	if err := a.dropStale(d, snap, note); err != nil {
		return changes, err
	}
	if err := a.restoreSysctls(slices.Concat(d.sysAll, d.sysDev), note); err != nil {
		return changes, err
	}
	for _, s := range d.sysAll {
		if err := a.setSysctl(s, note); err != nil {
			return changes, err
		}
	}
	for _, l := range d.links {
		if _, ok := snap.Link(l.Name); ok {
			continue
		}
		if err := a.addRecorded(l, func() { a.rec.Links = appendNew(a.rec.Links, l) }, note); err != nil {
			return changes, err
		}
		snap.Links = append(snap.Links, LinkInfo{Name: l.Name, Kind: l.Kind, Up: true})
	}
	for _, u := range d.ups {
		if l, ok := snap.Link(u.Name); ok && l.Up {
			continue
		}
		if err := a.addRecorded(u, func() { a.rec.Ups = appendNew(a.rec.Ups, u) }, note); err != nil {
			return changes, err
		}
	}
	for _, s := range d.sysDev {
		if err := a.setSysctl(s, note); err != nil {
			return changes, err
		}
	}
	for _, x := range d.addrs {
		if snap.HasAddr(x) {
			continue
		}
		if err := a.addRecorded(x, func() { a.rec.Addrs = appendNew(a.rec.Addrs, x) }, note); err != nil {
			return changes, err
		}
	}
	for _, r := range d.routes {
		cur, ok := snap.RouteTo(r.Dst, r.Metric)
		if ok && cur.Gateway == r.Gateway {
			continue
		}
		if err := a.addRecorded(r, func() {
			if ok && !slices.ContainsFunc(a.rec.Replaced, func(o Route) bool { return o.key() == cur.key() }) &&
				!slices.ContainsFunc(a.rec.Routes, func(o Route) bool { return o.key() == r.key() }) {
				a.rec.Replaced = append(a.rec.Replaced, cur)
			}
			a.rec.Routes = appendNew(a.rec.Routes, r)
		}, note); err != nil {
			return changes, err
		}
	}
	return changes, nil
}

func appendNew[T comparable](s []T, x T) []T {
	if slices.Contains(s, x) {
		return s
	}
	return append(s, x)
}

// addRecorded records obj (through rec), saves the record, then adds obj.
func (a *Agent) addRecorded(obj Object, rec func(), note func(fmt.Stringer)) error {
	saved := a.rec
	saved.Links = slices.Clone(a.rec.Links)
	saved.Ups = slices.Clone(a.rec.Ups)
	saved.Addrs = slices.Clone(a.rec.Addrs)
	saved.Routes = slices.Clone(a.rec.Routes)
	saved.Replaced = slices.Clone(a.rec.Replaced)
	rec()
	if err := a.save(); err != nil {
		a.rec = saved
		return fmt.Errorf("record %s: %w", obj, err)
	}
	if err := a.k.Add(obj); err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	note(obj)
	return nil
}

func (a *Agent) setSysctl(s kv, note func(fmt.Stringer)) error {
	changed, err := a.sys.Apply(s.key, s.value)
	if err != nil {
		return err
	}
	if changed {
		note(s)
	}
	return nil
}

// dropStale removes what an earlier run added that d no longer wants.
func (a *Agent) dropStale(d desired, snap *Snapshot, note func(fmt.Stringer)) error {
	var errs []error
	keep := a.rec
	keep.Routes, keep.Addrs, keep.Ups, keep.Links = nil, nil, nil, nil
	for _, r := range a.rec.Routes {
		if slices.ContainsFunc(d.routes, func(o Route) bool { return o.key() == r.key() }) {
			keep.Routes = append(keep.Routes, r)
			continue
		}
		if err := a.delRoute(r, snap, &keep, note); err != nil {
			errs = append(errs, err)
			keep.Routes = append(keep.Routes, r)
		}
	}
	for _, x := range a.rec.Addrs {
		if slices.Contains(d.addrs, x) {
			keep.Addrs = append(keep.Addrs, x)
			continue
		}
		if err := a.del(x, snap.HasAddr(x), note); err != nil {
			errs = append(errs, err)
			keep.Addrs = append(keep.Addrs, x)
		}
	}
	for _, u := range a.rec.Ups {
		if slices.Contains(d.ups, u) {
			keep.Ups = append(keep.Ups, u)
			continue
		}
		l, ok := snap.Link(u.Name)
		if err := a.del(u, ok && l.Up, note); err != nil {
			errs = append(errs, err)
			keep.Ups = append(keep.Ups, u)
		}
	}
	for _, l := range a.rec.Links {
		if slices.Contains(d.links, l) {
			keep.Links = append(keep.Links, l)
			continue
		}
		_, ok := snap.Link(l.Name)
		if err := a.del(l, ok, note); err != nil {
			errs = append(errs, err)
			keep.Links = append(keep.Links, l)
		}
	}
	a.rec = keep
	if err := a.save(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// delRoute removes route r lvs-node added (only while it still goes where
// lvs-node sent it) and puts back the route it replaced, if any.
func (a *Agent) delRoute(r Route, snap *Snapshot, rec *record, note func(fmt.Stringer)) error {
	cur, ok := snap.RouteTo(r.Dst, r.Metric)
	if ok && cur.Gateway == r.Gateway {
		if err := a.k.Del(r); err != nil {
			return fmt.Errorf("delete %s: %w", r, err)
		}
		note(deleted{r})
		ok = false
	}
	i := slices.IndexFunc(rec.Replaced, func(o Route) bool { return o.key() == r.key() })
	if i < 0 {
		return nil
	}
	orig := rec.Replaced[i]
	if !ok {
		if err := a.k.Add(orig); err != nil {
			return fmt.Errorf("put back %s: %w", orig, err)
		}
		note(orig)
	}
	rec.Replaced = slices.Delete(slices.Clone(rec.Replaced), i, i+1)
	return nil
}

// del removes obj when present.
func (a *Agent) del(obj Object, present bool, note func(fmt.Stringer)) error {
	if !present {
		return nil
	}
	if err := a.k.Del(obj); err != nil {
		return fmt.Errorf("undo %s: %w", obj, err)
	}
	note(deleted{obj})
	return nil
}

// deleted renders the ip(8) command that undoes an object.
type deleted struct{ obj fmt.Stringer }

func (d deleted) String() string {
	switch o := d.obj.(type) {
	case Link:
		return "ip link del " + o.Name
	case LinkUp:
		return "ip link set " + o.Name + " down"
	case Addr:
		return fmt.Sprintf("ip addr del %s dev %s", o.Prefix, o.Dev)
	case Route:
		return "ip " + deleteRoute(o.String())
	}
	return "undo " + d.obj.String()
}

func deleteRoute(s string) string {
	// "ip [-6 ]route add X" -> "[-6 ]route del X"
	s = s[len("ip "):]
	for i := 0; i+len("route add") <= len(s); i++ {
		if s[i:i+len("route add")] == "route add" {
			return s[:i] + "route del" + s[i+len("route add"):]
		}
	}
	return s
}

// Down removes everything lvs-node added, puts back every replaced route
// and restores every recorded sysctl original. It returns the changes.
func (a *Agent) Down() ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var changes []string
	note := func(s fmt.Stringer) { changes = append(changes, s.String()) }
	snap, err := a.k.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("read network state: %w", err)
	}
	if err := a.dropStale(desired{}, snap, note); err != nil {
		return changes, err
	}
	if err := a.restoreSysctls(nil, note); err != nil {
		return changes, err
	}
	return changes, nil
}

// restoreSysctls puts back the recorded original of every key that keep
// does not name.
func (a *Agent) restoreSysctls(keep []kv, note func(fmt.Stringer)) error {
	orig := a.sys.Originals()
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(orig)) {
		if slices.ContainsFunc(keep, func(s kv) bool { return s.key == k }) {
			continue
		}
		keys = append(keys, k)
		if cur, err := a.sys.Get(k); err == nil && !sysctls.Equal(cur, orig[k]) {
			note(kv{k, orig[k]})
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if err := a.sys.RestoreKeys(keys...); err != nil {
		return fmt.Errorf("restore sysctls: %w", err)
	}
	return nil
}

// VIPsBound counts the configured VIP addresses present on their devices.
func (a *Agent) VIPsBound() (int, error) {
	snap, err := a.k.Snapshot()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, x := range want(a.cfg).addrs {
		if snap.HasAddr(x) {
			n++
		}
	}
	return n, nil
}
