package hostnet

import (
	"fmt"
	"slices"
)

// Record is what lvs-node added to the host. It is saved before each
// addition, so that lvs-node removes exactly what it added, even after a
// crash, and never an object someone else put there.
type Record struct {
	Links    []Link   `json:"links,omitempty"`
	Ups      []LinkUp `json:"ups,omitempty"`
	Addrs    []Addr   `json:"addrs,omitempty"`
	Routes   []Route  `json:"routes,omitempty"`
	Replaced []Route  `json:"replaced,omitempty"` // originals of replaced routes
	Fous     []Fou    `json:"fous,omitempty"`
}

// Empty reports whether nothing is recorded.
func (r *Record) Empty() bool {
	return len(r.Links)+len(r.Ups)+len(r.Addrs)+len(r.Routes)+len(r.Replaced)+len(r.Fous) == 0
}

// Clone returns a copy of r that shares nothing with it.
func (r *Record) Clone() Record {
	return Record{Links: slices.Clone(r.Links), Ups: slices.Clone(r.Ups), Addrs: slices.Clone(r.Addrs),
		Routes: slices.Clone(r.Routes), Replaced: slices.Clone(r.Replaced), Fous: slices.Clone(r.Fous)}
}

// OwnsAddr reports whether lvs-node added a (same device and prefix).
func (r *Record) OwnsAddr(a Addr) bool {
	return slices.ContainsFunc(r.Addrs, func(x Addr) bool { return x.Dev == a.Dev && x.Prefix == a.Prefix })
}

// Changer adds and removes host objects.
type Changer interface {
	Add(obj Object) error
	Del(obj Object) error
}

// Ledger makes changes to the host record-first: an object is recorded
// and the record saved before it is added, and forgotten only once it is
// gone.
type Ledger struct {
	Rec Record
	// Save persists Rec (atomically); it is called before every addition
	// and after removals.
	Save func(*Record) error
}

// Add records obj (note adds it to the record), saves the record, then
// adds obj. When the record cannot be saved nothing is added and the
// record is as it was.
func (l *Ledger) Add(k Changer, obj Object, note func(*Record)) error {
	saved := l.Rec.Clone()
	note(&l.Rec)
	if err := l.Save(&l.Rec); err != nil {
		l.Rec = saved
		return fmt.Errorf("record %s: %w", obj, err)
	}
	if err := k.Add(obj); err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	return nil
}

// AddAddr adds a unless it is present already, in which case it belongs
// to someone else (keepalived's VRRP, an operator) and is not recorded,
// so lvs-node will never remove it. It reports whether it added a.
func (l *Ledger) AddAddr(k Changer, a Addr, present bool) (bool, error) {
	if present {
		return false, nil
	}
	if err := l.Add(k, a, func(r *Record) { r.Addrs = AppendNew(r.Addrs, a) }); err != nil {
		return false, err
	}
	return true, nil
}

// DropAddr removes a when lvs-node added it and it is present, then
// forgets it. An address lvs-node did not add is left alone. It reports
// whether it removed a.
func (l *Ledger) DropAddr(k Changer, a Addr, present bool) (bool, error) {
	if !l.Rec.OwnsAddr(a) {
		return false, nil
	}
	removed := false
	if present {
		if err := k.Del(a); err != nil {
			return false, fmt.Errorf("remove %s: %w", a, err)
		}
		removed = true
	}
	l.Rec.Addrs = slices.DeleteFunc(slices.Clone(l.Rec.Addrs), func(x Addr) bool { return x.Dev == a.Dev && x.Prefix == a.Prefix })
	if err := l.Save(&l.Rec); err != nil {
		return removed, fmt.Errorf("record removal of %s: %w", a, err)
	}
	return removed, nil
}

// AppendNew appends x to s unless s holds it already.
func AppendNew[T comparable](s []T, x T) []T {
	if slices.Contains(s, x) {
		return s
	}
	return append(s, x)
}
