package director

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// Defaults of auto_fwmark. lvs-node's nftables rules set only the bits of
// the mask (meta mark set meta mark & ~MASK | MARK), so the bits other
// software keeps in the packet mark survive. The default mask avoids the
// bits of the common ones: Calico (0xffff0000), kube-proxy (0x4000
// masquerade, 0x8000 drop) and Cilium (0x0f00). The default range leaves
// out the small values operators set by hand (ip rule fwmark 1).
const (
	DefaultFWMarkMask  = 0x000030ff
	DefaultFWMarkFirst = 0x00001000
	DefaultFWMarkLast  = 0x000030ff
)

// FWMarkRange is where the marks of ports: services come from: the values
// from First to Last that use only the bits of Mask (768 by default).
type FWMarkRange struct {
	First uint32 `yaml:"first"`
	Last  uint32 `yaml:"last"`
	Mask  uint32 `yaml:"mask"`
}

// validateAutoFWMark fills the defaults of auto_fwmark and checks it;
// nPorts is the number of ports: services, which must fit.
func (v *validator) validateAutoFWMark(r *FWMarkRange, nPorts int) {
	const p = "director.auto_fwmark"
	if !v.doc.Has(p + ".mask") {
		r.Mask = DefaultFWMarkMask
	}
	if !v.doc.Has(p + ".first") {
		r.First = DefaultFWMarkFirst
		if r.Mask != DefaultFWMarkMask {
			r.First = r.Mask & -r.Mask // its lowest bit
		}
	}
	if !v.doc.Has(p + ".last") {
		r.Last = r.Mask
	}
	switch {
	case r.Mask == 0:
		v.errorf(p+".mask", "must have at least one bit set")
		return
	case r.First == 0:
		v.errorf(p+".first", "must be at least 1")
		return
	}
	for _, x := range []struct {
		key string
		val uint32
	}{{"first", r.First}, {"last", r.Last}} {
		if x.val&^r.Mask != 0 {
			v.errorf(p+"."+x.key, "%#x has bits outside mask %#x: lvs-node's rules set only the mask's bits (set auto_fwmark.mask to the bits your marks may use)", x.val, r.Mask)
			return
		}
	}
	if r.Last < r.First {
		v.errorf(p, "last (%#x) must not be below first (%#x)", r.Last, r.First)
		return
	}
	if size := r.size(); uint64(nPorts) > size {
		v.errorf(p, "range holds %d marks but %d services use ports:", size, nPorts)
	}
}

// size is the number of marks in the range.
func (r FWMarkRange) size() uint64 {
	return uint64(compress(r.Last, r.Mask)) - uint64(compress(r.First, r.Mask)) + 1
}

// compress gathers the bits of x under mask into the low bits (PEXT);
// deposit spreads the low bits of x over the bits of mask (PDEP). Both keep
// order: the marks of a range, in order, are deposit(i) for consecutive i.
func compress(x, mask uint32) uint32 {
	var out uint32
	for i := 0; mask != 0; i++ {
		low := mask & -mask
		if x&low != 0 {
			out |= 1 << i
		}
		mask &^= low
	}
	return out
}

func deposit(x, mask uint32) uint32 {
	var out uint32
	for i := 0; mask != 0 && i < 32; i++ {
		low := mask & -mask
		if x&(1<<i) != 0 {
			out |= low
		}
		mask &^= low
	}
	return out
}

// AllocateMarks gives every ports: service of cfg its firewall mark. The
// mark is derived from the service's name: a hash of it picks a place in
// the auto_fwmark range, and a mark already taken moves the service to
// the next free one, services being placed in the order of (place, name).
// So the marks depend on the configuration alone: every director with the
// same file gives every service the same mark (connection sync between HA
// peers agrees), whatever the order of the file and across restarts.
// Adding a service can move another only when their places collide.
// Marks named by fwmark: services, and those in taken (marks of services
// lvs-node does not own on this host), are never given.
func AllocateMarks(cfg *Config, taken map[uint32]bool) (map[string]uint32, error) {
	r := cfg.Director.AutoFWMark
	used := map[uint32]bool{}
	for m := range taken {
		used[m] = true
	}
	type place struct {
		name string
		home uint64
	}
	var want []place
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if vs.FWMark != nil {
			used[*vs.FWMark] = true
		}
		if vs.Ports != nil {
			want = append(want, place{name: vs.Name})
		}
	}
	out := make(map[string]uint32, len(want))
	if len(want) == 0 {
		return out, nil
	}
	size := r.size()
	if r.Mask == 0 || r.Last < r.First || size == 0 {
		return nil, fmt.Errorf("auto_fwmark range %#x-%#x (mask %#x) holds no mark", r.First, r.Last, r.Mask)
	}
	base := uint64(compress(r.First, r.Mask))
	for i := range want {
		h := fnv.New64a()
		h.Write([]byte(want[i].name))
		want[i].home = h.Sum64() % size
	}
	slices.SortFunc(want, func(a, b place) int { return cmp.Or(cmp.Compare(a.home, b.home), cmp.Compare(a.name, b.name)) })
	for _, w := range want {
		found := false
		for step := uint64(0); step < size; step++ {
			m := deposit(uint32(base+(w.home+step)%size), r.Mask)
			if !used[m] {
				out[w.name], used[m], found = m, true, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("auto_fwmark range %#x-%#x (mask %#x) is exhausted", r.First, r.Last, r.Mask)
		}
	}
	return out, nil
}

// markChanges splits ops for a change of firewall marks: later are the
// deletions of services (and their real servers) whose mark the nftables
// rules in place still set and the new rules no longer do; first is the
// rest. Sending first, then replacing the rules, then sending later moves
// the traffic of a service whose mark changed without a moment in which
// packets carry a mark no service has.
func markChanges(ops []ipvs.Op, old, now map[string]uint32) (first, later []ipvs.Op) {
	gone := map[uint32]bool{}
	for _, m := range old {
		gone[m] = true
	}
	for _, m := range now {
		delete(gone, m)
	}
	if len(gone) == 0 {
		return ops, nil
	}
	for _, op := range ops {
		if (op.Kind == ipvs.DelService || op.Kind == ipvs.DelDest) && op.Service.FWMark != 0 && gone[op.Service.FWMark] {
			later = append(later, op)
			continue
		}
		first = append(first, op)
	}
	return first, later
}

// logMarkChanges logs each ports: service whose mark differs from the one
// recorded (a new service, a collision, a range or mask changed, or marks
// recorded by an earlier version, which allocated them by history), and
// says so when a mark is not the one the configuration alone gives
// because a service lvs-node does not own holds it on this host.
func (e *Engine) logMarkChanges(cfg *Config, old, now map[string]uint32, taken map[uint32]bool) {
	var pure map[string]uint32
	if len(taken) > 0 {
		pure, _ = AllocateMarks(cfg, nil)
	}
	for _, name := range slices.Sorted(maps.Keys(now)) {
		m := now[name]
		if o, ok := old[name]; ok && o == m {
			continue
		}
		args := []any{"service", name, "mark", fmt.Sprintf("%#x", m)}
		if o, ok := old[name]; ok {
			args = append(args, "was", fmt.Sprintf("%#x", o))
		}
		e.log.Info("firewall mark assigned", args...)
		if p, ok := pure[name]; ok && p != m {
			e.log.Warn("firewall mark differs from the one the configuration gives, because a service lvs-node does not own holds that mark on this host: HA peers may disagree",
				"service", name, "mark", fmt.Sprintf("%#x", m), "configured", fmt.Sprintf("%#x", p))
		}
	}
}
