package hostnet

import (
	"fmt"
	"net/netip"
	"strings"
)

// Snapshot is the part of the host's network state lvs-node looks at.
type Snapshot struct {
	Links  []LinkInfo
	Addrs  []Addr
	Routes []Route
	Fous   []Fou // FOU/GUE receive ports (tunnels.go)
}

// LinkInfo describes an existing link.
type LinkInfo struct {
	Name string
	Kind string // dummy, ipip, veth, device...
	Up   bool
}

// Link returns the named link.
func (s *Snapshot) Link(name string) (LinkInfo, bool) {
	for _, l := range s.Links {
		if l.Name == name {
			return l, true
		}
	}
	return LinkInfo{}, false
}

// HasAddr reports whether a is present on its device (whatever its label).
func (s *Snapshot) HasAddr(a Addr) bool {
	for _, b := range s.Addrs {
		if b.Dev == a.Dev && b.Prefix == a.Prefix {
			return true
		}
	}
	return false
}

// RouteTo returns the route to dst with metric (main table), if any.
func (s *Snapshot) RouteTo(dst netip.Prefix, metric int) (Route, bool) {
	for _, r := range s.Routes {
		if r.Dst == dst && r.Metric == metric {
			return r, true
		}
	}
	return Route{}, false
}

// Object is something lvs-node adds to the host. String renders it as the
// ip(8) command that adds it; Key identifies it (two objects with the same
// key cannot both be present).
type Object interface {
	fmt.Stringer
	Key() string
}

// Link is a link lvs-node creates: dummy, or ip6tnl (tunnels.go).
type Link struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

func (l Link) String() string { return fmt.Sprintf("ip link add %s type %s", l.Name, l.Kind) }
func (l Link) Key() string    { return "link " + l.Name }

// LinkUp is an existing link lvs-node sets up (tunl0).
type LinkUp struct {
	Name string `json:"name"`
}

func (l LinkUp) String() string { return fmt.Sprintf("ip link set %s up", l.Name) }
func (l LinkUp) Key() string    { return "up " + l.Name }

// Addr is an address on a device.
type Addr struct {
	Dev    string       `json:"dev"`
	Prefix netip.Prefix `json:"prefix"`
	Label  string       `json:"label,omitempty"`
}

func (a Addr) String() string {
	s := fmt.Sprintf("ip addr add %s dev %s", a.Prefix, a.Dev)
	if a.Label != "" && a.Label != a.Dev {
		s += " label " + a.Label
	}
	return s
}
func (a Addr) Key() string { return "addr " + a.Dev + " " + a.Prefix.String() }

// Route is a main-table unicast route.
type Route struct {
	Dst     netip.Prefix `json:"dst"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	Dev     string       `json:"dev,omitempty"`
	Metric  int          `json:"metric,omitempty"`
	Src     netip.Addr   `json:"src,omitzero"`
}

func (r Route) String() string {
	var b strings.Builder
	b.WriteString("ip ")
	if r.Dst.Addr().Is6() {
		b.WriteString("-6 ")
	}
	b.WriteString("route add ")
	if r.Dst.Bits() == 0 {
		b.WriteString("default")
	} else {
		b.WriteString(r.Dst.String())
	}
	if r.Gateway.IsValid() {
		b.WriteString(" via " + r.Gateway.String())
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.Src.IsValid() {
		b.WriteString(" src " + r.Src.String())
	}
	return b.String()
}
func (r Route) Key() string { return fmt.Sprintf("route %s %d", r.Dst, r.Metric) }

// connected reports whether gw lies in a prefix of an address on an up link
// other than lo.
func (s *Snapshot) Connected(gw netip.Addr) bool {
	for _, a := range s.Addrs {
		if a.Dev == "lo" {
			continue
		}
		if l, ok := s.Link(a.Dev); !ok || !l.Up {
			continue
		}
		if a.Prefix.Bits() < a.Prefix.Addr().BitLen() && a.Prefix.Masked().Contains(gw) {
			return true
		}
	}
	return false
}
