package rsagent

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/lvs-node/lvs-node/internal/hostnet"
	"github.com/lvs-node/lvs-node/internal/sysctls"
)

// dropStale removes what an earlier run added that d no longer wants.
func (a *Agent) dropStale(d desired, snap *Snapshot, note func(fmt.Stringer)) error {
	var errs []error
	keep := a.led.Rec.Clone()
	keep.Routes, keep.Addrs, keep.Ups, keep.Links, keep.Fous = nil, nil, nil, nil, nil
	for _, r := range a.led.Rec.Routes {
		if slices.ContainsFunc(d.routes, func(o Route) bool { return o.Key() == r.Key() }) {
			keep.Routes = append(keep.Routes, r)
			continue
		}
		if err := a.delRoute(r, snap, &keep, note); err != nil {
			errs = append(errs, err)
			keep.Routes = append(keep.Routes, r)
		}
	}
	for _, x := range a.led.Rec.Addrs {
		if slices.Contains(d.addrs, x) {
			keep.Addrs = append(keep.Addrs, x)
			continue
		}
		if err := a.del(x, snap.HasAddr(x), note); err != nil {
			errs = append(errs, err)
			keep.Addrs = append(keep.Addrs, x)
		}
	}
	for _, f := range a.led.Rec.Fous {
		if slices.Contains(d.fous, f) {
			keep.Fous = append(keep.Fous, f)
			continue
		}
		if err := a.del(f, hasFou(snap, f), note); err != nil {
			errs = append(errs, err)
			keep.Fous = append(keep.Fous, f)
		}
	}
	for _, u := range a.led.Rec.Ups {
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
	for _, l := range a.led.Rec.Links {
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
	a.led.Rec = keep
	if err := a.save(&a.led.Rec); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// delRoute removes route r lvs-node added (only while it still goes where
// lvs-node sent it) and puts back the route it replaced, if any.
func (a *Agent) delRoute(r Route, snap *Snapshot, rec *hostnet.Record, note func(fmt.Stringer)) error {
	cur, ok := snap.RouteTo(r.Dst, r.Metric)
	if ok && cur.Gateway == r.Gateway {
		if err := a.k.Del(r); err != nil {
			return fmt.Errorf("delete %s: %w", r, err)
		}
		note(deleted{r})
		ok = false
	}
	i := slices.IndexFunc(rec.Replaced, func(o Route) bool { return o.Key() == r.Key() })
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
	case hostnet.Fou:
		return strings.Replace(strings.Replace(o.String(), "fou add", "fou del", 1), " gue", "", 1)
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
