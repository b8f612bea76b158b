package ipvs

import (
	"fmt"
	"slices"
	"syscall"
)

// NormKey puts a service key in the form used for comparison: the kernel
// reports firewall-mark services with protocol TCP and no address, so
// only the family and the mark identify them.
func NormKey(k ServiceKey) ServiceKey {
	if k.FWMark != 0 {
		return ServiceKey{Family: k.Family, FWMark: k.FWMark}
	}
	return k
}

// KernelKey is the key the kernel reports for a service: firewall-mark
// services come back with protocol TCP and no address.
func KernelKey(k ServiceKey) ServiceKey {
	if k.FWMark != 0 {
		return ServiceKey{Family: k.Family, Protocol: TCP, FWMark: k.FWMark}
	}
	return k
}

// Refusal is called by ApplyOps for an operation the kernel would refuse,
// with its position and the errno the kernel answers with.
type Refusal func(i int, err error)

// ApplyOps returns t with ops applied the way the kernel applies them,
// leaving t untouched (the result shares the real-server lists of the
// services ops do not change). This is the one in-memory model of an IPVS
// change: the director's view of the kernel, the ipvsadm rule parser and
// the test kernel (package ipvstest) all go through it.
//
// Settings come from the operations; counters and connection numbers of
// existing entries are kept and new entries start at zero. An operation
// the kernel would refuse changes nothing and is reported to refused (nil
// ignores them) with the kernel's errno: EEXIST for adding what exists,
// ESRCH for a missing service, ENOENT for a missing real server, EINVAL
// for a service without scheduler or with an IPv6 prefix length out of
// 1-128 (the kernel checks it for every IPv6 service), and for a real
// server of the other address family that is not tunnelled.
// Services keep their order; new ones come last, keyed as given.
func ApplyOps(t *Table, ops []Op, refused Refusal) *Table {
	out := &Table{}
	if t != nil {
		out.Services = slices.Clone(t.Services)
	}
	applyOps(out, ops, refused, false)
	return out
}

// Apply applies ops to t in place, with the rules of ApplyOps: for a
// table that only its caller holds, such as one being built from ipvsadm
// rules.
func (t *Table) Apply(ops []Op, refused Refusal) {
	applyOps(t, ops, refused, true)
}

// applyOps applies ops to out, whose service list the caller owns. The
// real-server lists are copied before they change unless mine says they
// are the caller's too.
func applyOps(out *Table, ops []Op, refused Refusal, mine bool) {
	if len(ops) == 0 {
		return
	}
	if refused == nil {
		refused = func(int, error) {}
	}
	// own[i]: out.Services[i].Dests may be changed in place (a copy made
	// here); dead[i]: the service was deleted.
	own := make([]bool, len(out.Services), len(out.Services)+1)
	if mine {
		for i := range own {
			own[i] = true
		}
	}
	dead := make([]bool, len(out.Services), len(out.Services)+1)
	ndead := 0
	// A few operations search linearly; many use an index.
	var idx map[ServiceKey]int
	if len(ops) > 8 {
		idx = make(map[ServiceKey]int, len(out.Services))
		for i := range out.Services {
			idx[NormKey(out.Services[i].ServiceKey)] = i
		}
	}
	find := func(k ServiceKey) int {
		k = NormKey(k)
		if idx != nil {
			if i, ok := idx[k]; ok {
				return i
			}
			return -1
		}
		for i := range out.Services {
			if !dead[i] && NormKey(out.Services[i].ServiceKey) == k {
				return i
			}
		}
		return -1
	}
	for n, op := range ops {
		i := find(op.Service.ServiceKey)
		switch op.Kind {
		case AddService, EditService:
			if err := validService(op.Service); err != nil {
				refused(n, err)
				continue
			}
		}
		if op.Kind == AddService {
			if i >= 0 {
				refused(n, syscall.EEXIST)
				continue
			}
			s := op.Service
			s.Flags |= FlagHashed
			out.Services = append(out.Services, ServiceEntry{Service: s})
			own, dead = append(own, true), append(dead, false)
			if idx != nil {
				idx[NormKey(s.ServiceKey)] = len(out.Services) - 1
			}
			continue
		}
		if i < 0 {
			refused(n, syscall.ESRCH)
			continue
		}
		e := &out.Services[i]
		switch op.Kind {
		case EditService:
			s := op.Service
			s.ServiceKey = e.ServiceKey
			s.Flags |= FlagHashed
			e.Service = s
			continue
		case DelService:
			dead[i] = true
			ndead++
			if idx != nil {
				delete(idx, NormKey(e.ServiceKey))
			}
			continue
		case AddDest, EditDest, DelDest:
		default:
			refused(n, fmt.Errorf("unknown operation %d: %w", op.Kind, syscall.EINVAL))
			continue
		}
		if op.Kind != DelDest {
			if err := validDest(e.Service, op.Dest); err != nil {
				refused(n, err)
				continue
			}
		}
		j := slices.IndexFunc(e.Dests, func(d DestEntry) bool { return d.DestKey == op.Dest.DestKey })
		if op.Kind == AddDest && j >= 0 {
			refused(n, syscall.EEXIST)
			continue
		}
		if op.Kind != AddDest && j < 0 {
			refused(n, syscall.ENOENT)
			continue
		}
		if !own[i] {
			e.Dests = slices.Clip(slices.Clone(e.Dests))
			own[i] = true
		}
		switch op.Kind {
		case AddDest:
			e.Dests = append(e.Dests, DestEntry{Destination: op.Dest})
		case EditDest:
			e.Dests[j].Destination = op.Dest
		case DelDest:
			e.Dests = slices.Delete(e.Dests, j, j+1)
		}
	}
	if ndead > 0 {
		kept := out.Services[:0]
		for i := range out.Services {
			if !dead[i] {
				kept = append(kept, out.Services[i])
			}
		}
		clear(out.Services[len(kept):])
		out.Services = kept
	}
}

// validService reports what the kernel refuses in a service's settings.
func validService(s Service) error {
	if s.Scheduler == "" {
		return fmt.Errorf("no scheduler: %w", syscall.EINVAL)
	}
	if s.Family == afInet6 && (s.Netmask < 1 || s.Netmask > 128) {
		return fmt.Errorf("IPv6 netmask %d: %w", s.Netmask, syscall.EINVAL)
	}
	return nil
}

// validDest reports what the kernel refuses in a real server's settings
// for service s: a real server of the other address family is accepted
// only with tunnel forwarding (ip_vs_genl_set_cmd, Linux 3.18 and later).
func validDest(s Service, d Destination) error {
	if FamilyOf(d.Addr) != s.Family && d.Forward&fwdMask != Tunnel {
		return fmt.Errorf("real server %s of the other family with %s forwarding: %w", d.DestKey, d.Forward, syscall.EINVAL)
	}
	return nil
}

// CompareKeys orders service keys: by family, mark, protocol, address and
// port.
func CompareKeys(a, b ServiceKey) int {
	switch {
	case a.Family != b.Family:
		return int(a.Family) - int(b.Family)
	case a.FWMark != b.FWMark:
		if a.FWMark < b.FWMark {
			return -1
		}
		return 1
	case a.Protocol != b.Protocol:
		return int(a.Protocol) - int(b.Protocol)
	case a.Addr != b.Addr:
		return a.Addr.Compare(b.Addr)
	}
	return int(a.Port) - int(b.Port)
}

// CompareDests orders real servers by address and port.
func CompareDests(a, b DestKey) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}

// Clone returns a copy of t that shares nothing with it.
func (t *Table) Clone() *Table {
	out := &Table{Services: slices.Clone(t.Services)}
	for i := range out.Services {
		out.Services[i].Dests = slices.Clone(out.Services[i].Dests)
	}
	return out
}
