package director

import (
	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// Ownership is the set of services lvs-node created or adopted, by
// normalised key (see normKey). Only those may be deleted.
type Ownership map[ipvs.ServiceKey]bool

// Owns reports whether k is owned.
func (o Ownership) Owns(k ipvs.ServiceKey) bool { return o[ipvs.NormKey(k)] }

// Diff returns the operations that turn current into desired, touching
// only what must change:
//
//   - a desired service missing from current is added, then its real
//     servers;
//   - a desired service present in current (owned or not: it is adopted)
//     is edited in place when its settings differ, never deleted and
//     re-added, so its connections survive; its real servers are added,
//     edited and deleted to match;
//   - a current service not desired is deleted, real servers first, only
//     when owned says lvs-node owns it; any other service is left alone.
//
// Diff is pure: it reads its arguments only. The operations for one
// service are contiguous, a service is added before its real servers and
// its real servers are deleted before it.
func Diff(desired, current *ipvs.Table, owned Ownership) []ipvs.Op {
	var cur map[ipvs.ServiceKey]*ipvs.ServiceEntry
	if current != nil {
		cur = make(map[ipvs.ServiceKey]*ipvs.ServiceEntry, len(current.Services))
		for i := range current.Services {
			cur[ipvs.NormKey(current.Services[i].ServiceKey)] = &current.Services[i]
		}
	}
	var ops []ipvs.Op
	if len(cur) == 0 && desired != nil {
		n := len(desired.Services)
		for i := range desired.Services {
			n += len(desired.Services[i].Dests)
		}
		ops = make([]ipvs.Op, 0, n) // from empty: one op per object
	}
	want := map[ipvs.ServiceKey]bool{}
	if desired != nil {
		want = make(map[ipvs.ServiceKey]bool, len(desired.Services))
		for i := range desired.Services {
			d := &desired.Services[i]
			k := ipvs.NormKey(d.ServiceKey)
			if want[k] {
				continue // a second entry for one key cannot be applied; the first wins
			}
			want[k] = true
			svc := d.Service
			svc.ServiceKey = k
			c := cur[k]
			if c == nil {
				ops = append(ops, ipvs.Op{Kind: ipvs.AddService, Service: svc})
				for j := range d.Dests {
					ops = append(ops, ipvs.Op{Kind: ipvs.AddDest, Service: svc, Dest: d.Dests[j].Destination})
				}
				continue
			}
			if !serviceEqual(svc, c.Service) {
				ops = append(ops, ipvs.Op{Kind: ipvs.EditService, Service: svc})
			}
			ops = diffDests(ops, svc, d.Dests, c.Dests)
		}
	}
	if current != nil {
		for i := range current.Services {
			c := &current.Services[i]
			k := ipvs.NormKey(c.ServiceKey)
			if want[k] || !owned[k] {
				continue
			}
			svc := c.Service
			svc.ServiceKey = k
			for j := range c.Dests {
				ops = append(ops, ipvs.Op{Kind: ipvs.DelDest, Service: svc, Dest: c.Dests[j].Destination})
			}
			ops = append(ops, ipvs.Op{Kind: ipvs.DelService, Service: svc})
		}
	}
	return ops
}

// serviceEqual compares settings the kernel keeps, ignoring the hashed flag
// and with keys normalised.
func serviceEqual(a, b ipvs.Service) bool {
	a.ServiceKey, b.ServiceKey = ipvs.NormKey(a.ServiceKey), ipvs.NormKey(b.ServiceKey)
	return a.Equal(b)
}

// smallDests is the size up to which a linear search beats a map.
const smallDests = 16

func diffDests(ops []ipvs.Op, svc ipvs.Service, want, have []ipvs.DestEntry) []ipvs.Op {
	var idx map[ipvs.DestKey]int
	if len(have) > smallDests {
		idx = make(map[ipvs.DestKey]int, len(have))
		for i := range have {
			idx[have[i].DestKey] = i
		}
	}
	find := func(k ipvs.DestKey) int {
		if idx != nil {
			if i, ok := idx[k]; ok {
				return i
			}
			return -1
		}
		for i := range have {
			if have[i].DestKey == k {
				return i
			}
		}
		return -1
	}
	// matched[j] is set once have[j] is desired; small tables use the
	// stack buffer.
	var matchedBuf [smallDests]bool
	var matched []bool
	if len(have) <= smallDests {
		matched = matchedBuf[:len(have)]
	} else {
		matched = make([]bool, len(have))
	}
	for i := range want {
		w := &want[i].Destination
		j := find(w.DestKey)
		if j < 0 {
			ops = append(ops, ipvs.Op{Kind: ipvs.AddDest, Service: svc, Dest: *w})
			continue
		}
		if matched[j] {
			continue // duplicate in desired
		}
		matched[j] = true
		if !w.Equal(have[j].Destination) {
			ops = append(ops, ipvs.Op{Kind: ipvs.EditDest, Service: svc, Dest: *w})
		}
	}
	for j := range have {
		if !matched[j] {
			ops = append(ops, ipvs.Op{Kind: ipvs.DelDest, Service: svc, Dest: have[j].Destination})
		}
	}
	return ops
}
