package director

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// serviceFile is one file's virtual services as read and validated: the
// main file's virtual_services, or the list of an included file.
type serviceFile struct {
	path     string
	doc      *config.Doc
	prefix   string // key path of the list in the file: "virtual_services", or "" for an included file
	rank     int    // the include pattern that matched it first; -1 for the main file
	services []VirtualService
	stat     fileStamp // when it was read (included files)
}

// svcAt is service i of file f.
type svcAt struct {
	f *serviceFile
	i int
}

func (a svcAt) vs() *VirtualService { return &a.f.services[a.i] }

// path is the key path of the service in its file.
func (a svcAt) path() string { return config.Index(a.f.prefix, a.i) }

// compare orders services as the configuration lists them: the main
// file's first, then the included files by pattern and name.
func (a svcAt) compare(b svcAt) int {
	if a.f != b.f {
		if c := cmp.Compare(a.f.rank, b.f.rank); c != 0 {
			return c
		}
		if c := strings.Compare(a.f.path, b.f.path); c != 0 {
			return c
		}
	}
	return cmp.Compare(a.i, b.i)
}

// errorf reports a problem at path below the service, in its file.
func (a svcAt) errorf(key, format string, args ...any) *config.Error {
	return a.f.doc.Errorf(config.Join(a.path(), key), format, args...)
}

// name describes a as seen from the file of at: its key path, and where
// it is when in another file.
func (a svcAt) name(at svcAt) string {
	if a.f.path == at.f.path {
		return a.path()
	}
	return fmt.Sprintf("%s (%s)", a.f.doc.Pos(a.path()), a.path())
}

// vipProto is a VIP and protocol: what a ports: [0] service takes whole.
type vipProto struct {
	vip   netip.Addr
	proto ipvs.Protocol
}

// claims indexes what virtual services take that no other may: a name, a
// classic service, the ports of a VIP (for ports: services) and a
// firewall mark. It is kept between reloads, so that a reload checks the
// services of the files that changed against it, without going over
// every service again.
type claims struct {
	names   map[string][]svcAt
	classic map[serviceID][]svcAt
	byVIP   map[vipProto][]svcAt // classic services by VIP and protocol
	marked  map[serviceID][]svcAt
	marks   map[[2]uint32][]svcAt // family, mark
	nPorts  int                   // services that use ports:
}

func newClaims() *claims {
	return &claims{names: map[string][]svcAt{}, classic: map[serviceID][]svcAt{}, byVIP: map[vipProto][]svcAt{},
		marked: map[serviceID][]svcAt{}, marks: map[[2]uint32][]svcAt{}}
}

// claim is one thing a service takes.
type claim struct {
	kind claimKind
	name string
	id   serviceID
	mark [2]uint32
	port uint16 // for claimMarked: the port (the id's)
}

type claimKind int

const (
	claimName claimKind = iota
	claimClassic
	claimMarked
	claimMark
)

// claimsOf lists what vs takes, in the order its conflicts are reported.
func claimsOf(vs *VirtualService) []claim {
	var out []claim
	if vs.Name != "" {
		out = append(out, claim{kind: claimName, name: vs.Name})
	}
	if !vs.vip.IsValid() && vs.FWMark == nil {
		return out
	}
	switch {
	case vs.FWMark != nil:
		out = append(out, claim{kind: claimMark, mark: [2]uint32{uint32(vs.family), *vs.FWMark}})
	case vs.Ports != nil:
		for _, port := range vs.Ports {
			out = append(out, claim{kind: claimMarked, id: serviceID{vs.vip, vs.proto, port}, port: port})
		}
	case vs.Port != nil:
		out = append(out, claim{kind: claimClassic, id: serviceID{vs.vip, vs.proto, *vs.Port}})
	}
	return out
}

// index returns the owners of c as the index holds them.
func (cl *claims) index(c claim) []svcAt {
	switch c.kind {
	case claimName:
		return cl.names[c.name]
	case claimClassic:
		return cl.classic[c.id]
	case claimMarked:
		return cl.marked[c.id]
	}
	return cl.marks[c.mark]
}

func (cl *claims) set(c claim, owners []svcAt) {
	switch c.kind {
	case claimName:
		setOrDelete(cl.names, c.name, owners)
	case claimClassic:
		setOrDelete(cl.classic, c.id, owners)
	case claimMarked:
		setOrDelete(cl.marked, c.id, owners)
	default:
		setOrDelete(cl.marks, c.mark, owners)
	}
}

func setOrDelete[K comparable](m map[K][]svcAt, k K, owners []svcAt) {
	if len(owners) == 0 {
		delete(m, k)
	} else {
		m[k] = owners
	}
}

// change is a set of files leaving the configuration (removed: files
// gone, and the previous versions of files read again) and entering it
// (added).
type change struct {
	cl      *claims
	removed map[*serviceFile]bool
	added   []*serviceFile
	// fresh indexes the claims of the added files.
	fresh map[claimKey][]svcAt
	vips  map[vipProto][]svcAt // classic services of the added files
}

// claimKey is a claim without its details.
type claimKey struct {
	kind claimKind
	name string
	id   serviceID
	mark [2]uint32
}

func keyOf(c claim) claimKey { return claimKey{kind: c.kind, name: c.name, id: c.id, mark: c.mark} }

func (cl *claims) change(removed, added []*serviceFile) *change {
	ch := &change{cl: cl, removed: map[*serviceFile]bool{}, added: added, fresh: map[claimKey][]svcAt{}, vips: map[vipProto][]svcAt{}}
	for _, f := range removed {
		ch.removed[f] = true
	}
	for _, f := range added {
		for i := range f.services {
			at := svcAt{f, i}
			vs := at.vs()
			for _, c := range claimsOf(vs) {
				k := keyOf(c)
				ch.fresh[k] = append(ch.fresh[k], at)
			}
			if vs.Port != nil && vs.FWMark == nil && vs.vip.IsValid() {
				vp := vipProto{vs.vip, vs.proto}
				ch.vips[vp] = append(ch.vips[vp], at)
			}
		}
	}
	return ch
}

// owners returns the owners of c once the change is made, in the
// configuration's order.
func (ch *change) owners(c claim) []svcAt {
	var out []svcAt
	for _, at := range ch.cl.index(c) {
		if !ch.removed[at.f] {
			out = append(out, at)
		}
	}
	out = append(out, ch.fresh[keyOf(c)]...)
	if len(out) > 1 {
		slices.SortFunc(out, svcAt.compare)
	}
	return out
}

// classicOn returns the classic services on vp once the change is made.
func (ch *change) classicOn(vp vipProto) []svcAt {
	var out []svcAt
	for _, at := range ch.cl.byVIP[vp] {
		if !ch.removed[at.f] {
			out = append(out, at)
		}
	}
	return append(out, ch.vips[vp]...)
}

// nPorts returns the number of ports: services once the change is made.
func (ch *change) nPorts() int {
	n := ch.cl.nPorts
	for f := range ch.removed {
		n -= countPorts(f)
	}
	for _, f := range ch.added {
		n += countPorts(f)
	}
	return n
}

func countPorts(f *serviceFile) int {
	n := 0
	for i := range f.services {
		vs := &f.services[i]
		if vs.Ports != nil && vs.FWMark == nil && vs.vip.IsValid() {
			n++
		}
	}
	return n
}

// check reports the conflicts that taking removed out of the services and
// added in would make: two services with one name, one classic service,
// one port of a VIP or one firewall mark, a classic service that a
// ports: service would shadow, and more ports: services than the
// auto_fwmark range has marks. Each conflict is reported at the service
// that comes later in the configuration. The index is left as it was
// (see commit).
func (cl *claims) check(d *Settings, removed, added []*serviceFile) config.Errors {
	ch := cl.change(removed, added)
	var errs config.Errors
	done := map[claimKey]bool{}
	// Conflicts over the claims of the added services, in the order of
	// those services: every owner after the first is reported.
	for _, f := range added {
		for i := range f.services {
			for _, c := range claimsOf(&f.services[i]) {
				k := keyOf(c)
				if done[k] {
					continue
				}
				done[k] = true
				owners := ch.owners(c)
				for _, at := range owners[1:] {
					errs = append(errs, conflict(c, at, owners[0]))
				}
			}
		}
	}
	// A ports: service marks packets before IPVS looks up classic
	// services, so an overlap would silently shadow the classic one.
	shadowed := map[svcAt]bool{}
	var check []svcAt
	add := func(at svcAt) {
		if !shadowed[at] {
			shadowed[at] = true
			check = append(check, at)
		}
	}
	for _, f := range added {
		for i := range f.services {
			at := svcAt{f, i}
			vs := at.vs()
			switch {
			case vs.Port != nil && vs.FWMark == nil && vs.vip.IsValid():
				add(at)
			case vs.Ports != nil && vs.FWMark == nil && vs.vip.IsValid():
				for _, c := range ch.classicOn(vipProto{vs.vip, vs.proto}) {
					if slices.Contains(vs.Ports, *c.vs().Port) || slices.Contains(vs.Ports, 0) {
						add(c)
					}
				}
			}
		}
	}
	slices.SortFunc(check, svcAt.compare)
	for _, at := range check {
		vs := at.vs()
		for _, port := range []uint16{*vs.Port, 0} {
			if owners := ch.owners(claim{kind: claimMarked, id: serviceID{vs.vip, vs.proto, port}}); len(owners) > 0 {
				errs = append(errs, at.errorf("port", "%s %s is already balanced by the ports: service %s",
					strings.ToUpper(vs.proto.String()), netip.AddrPortFrom(vs.vip, *vs.Port), owners[0].name(at)))
				break
			}
		}
	}
	r := d.AutoFWMark
	if size := r.size(); r.Mask != 0 && r.First != 0 && r.Last >= r.First {
		if n := ch.nPorts(); uint64(n) > size {
			main := mainDoc(removed, added)
			errs = append(errs, main.Errorf("director.auto_fwmark", "range holds %d marks but %d services use ports:", size, n))
		}
	}
	return errs
}

// mainDoc returns the main file's document among files, or an empty one.
func mainDoc(lists ...[]*serviceFile) *config.Doc {
	for _, l := range lists {
		for _, f := range l {
			if f.rank < 0 {
				return f.doc
			}
		}
	}
	return &config.Doc{}
}

// conflict reports that at takes c, which first already took.
func conflict(c claim, at, first svcAt) *config.Error {
	vs := at.vs()
	prev := first.name(at)
	switch c.kind {
	case claimName:
		return at.errorf("name", "name %q is already used by %s", vs.Name, prev)
	case claimClassic:
		return at.errorf("port", "service %s %s is already defined by %s", strings.ToUpper(vs.proto.String()), netip.AddrPortFrom(vs.vip, *vs.Port), prev)
	case claimMarked:
		return at.errorf("ports", "%s port %d of %s is already balanced by %s", vs.proto, c.port, vs.vip, prev)
	}
	return at.errorf("fwmark", "fwmark %d is already used by %s", *vs.FWMark, prev)
}

// commit makes the index hold the change that check accepted.
func (cl *claims) commit(removed, added []*serviceFile) {
	gone := map[*serviceFile]bool{}
	for _, f := range removed {
		gone[f] = true
		cl.nPorts -= countPorts(f)
	}
	keep := func(owners []svcAt) []svcAt {
		return slices.DeleteFunc(slices.Clone(owners), func(at svcAt) bool { return gone[at.f] })
	}
	for _, f := range removed {
		for i := range f.services {
			vs := &f.services[i]
			for _, c := range claimsOf(vs) {
				cl.set(c, keep(cl.index(c)))
			}
			if vs.Port != nil && vs.FWMark == nil && vs.vip.IsValid() {
				vp := vipProto{vs.vip, vs.proto}
				setOrDelete(cl.byVIP, vp, keep(cl.byVIP[vp]))
			}
		}
	}
	for _, f := range added {
		cl.nPorts += countPorts(f)
		for i := range f.services {
			at := svcAt{f, i}
			vs := at.vs()
			for _, c := range claimsOf(vs) {
				cl.set(c, append(cl.index(c), at))
			}
			if vs.Port != nil && vs.FWMark == nil && vs.vip.IsValid() {
				vp := vipProto{vs.vip, vs.proto}
				cl.byVIP[vp] = append(cl.byVIP[vp], at)
			}
		}
	}
}
