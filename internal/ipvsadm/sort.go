package ipvsadm

import (
	"net/netip"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// ipvsadm sorts with libipvs's ipvs_cmp_services and ipvs_cmp_dests
// through glibc's qsort, which is a stable top-down merge sort. The
// comparators subtract unsigned 32-bit words and read the result as a
// signed int, so two addresses more than 2^31 apart compare "backwards"
// (10.0.0.1 sorts after 192.168.0.1). The functions below reproduce both
// the comparators and the merge order so that listings match byte for
// byte, quirks included.

// word returns the i-th 32-bit word (network order) of the nf_inet_addr
// union holding a; an IPv4 address occupies word 0 and the rest is zero.
func word(a netip.Addr, i int) uint32 {
	if a.Is4() {
		if i != 0 {
			return 0
		}
		b := a.As4()
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	if !a.IsValid() {
		return 0
	}
	b := a.As16()
	return uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
}

// csub is C's "int r = u32a - u32b".
func csub(a, b uint32) int { return int(int32(a - b)) }

func cmpAddr(af uint16, a, b netip.Addr) int {
	if af == afInet6 {
		r := 0
		for i := 0; r == 0 && i < 4; i++ {
			r = csub(word(a, i), word(b, i))
		}
		return r
	}
	return csub(word(a, 0), word(b, 0))
}

func cmpServices(s1, s2 *ipvs.ServiceEntry) int {
	if r := csub(s1.FWMark, s2.FWMark); r != 0 {
		return r
	}
	af1, af2 := family(s1.ServiceKey), family(s2.ServiceKey)
	if r := int(af1) - int(af2); r != 0 {
		return r
	}
	if r := int(s1.Protocol) - int(s2.Protocol); r != 0 {
		return r
	}
	if r := cmpAddr(af1, s1.Addr, s2.Addr); r != 0 {
		return r
	}
	return int(s1.Port) - int(s2.Port)
}

func cmpDests(d1, d2 *ipvs.DestEntry) int {
	var af uint16 = 2
	if d1.Addr.Is6() {
		af = afInet6
	}
	if r := cmpAddr(af, d1.Addr, d2.Addr); r != 0 {
		return r
	}
	return int(d1.Port) - int(d2.Port)
}

// msort is glibc's msort_with_tmp: split in halves (the first half is the
// smaller one), sort each, merge taking from the left on ties.
func msort[T any](b []T, cmp func(a, b *T) int) {
	if len(b) < 2 {
		return
	}
	msortRec(b, make([]T, len(b)), cmp)
}

func msortRec[T any](b, tmp []T, cmp func(a, b *T) int) {
	n := len(b)
	if n <= 1 {
		return
	}
	n1 := n / 2
	b1, b2 := b[:n1], b[n1:]
	msortRec(b1, tmp, cmp)
	msortRec(b2, tmp, cmp)
	i, j, k := 0, 0, 0
	for i < len(b1) && j < len(b2) {
		if cmp(&b1[i], &b2[j]) <= 0 {
			tmp[k] = b1[i]
			i++
		} else {
			tmp[k] = b2[j]
			j++
		}
		k++
	}
	k += copy(tmp[k:], b1[i:])
	copy(b, tmp[:k])
}

// ordered returns the services of t in ipvsadm's order (a copy; t is not
// changed).
func ordered(t *ipvs.Table, noSort bool) []ipvs.ServiceEntry {
	if t == nil {
		return nil
	}
	s := append([]ipvs.ServiceEntry(nil), t.Services...)
	if !noSort {
		msort(s, cmpServices)
	}
	return s
}

func orderedDests(d []ipvs.DestEntry, noSort bool) []ipvs.DestEntry {
	s := append([]ipvs.DestEntry(nil), d...)
	if !noSort {
		msort(s, cmpDests)
	}
	return s
}
