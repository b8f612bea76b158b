package hostnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/modprobe"
)

// NetlinkKernel reads and changes the links, addresses and routes of the
// network namespace it was created in, over rtnetlink.
type NetlinkKernel struct {
	h *netlink.Handle
	// ModprobeTimeout bounds LoadModule (modprobe.DefaultTimeout when 0).
	ModprobeTimeout time.Duration
}

// NewNetlinkKernel opens netlink sockets in the calling thread's network
// namespace.
func NewNetlinkKernel() (*NetlinkKernel, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	// No answer from the kernel may block a caller for good.
	if err := h.SetSocketTimeout(socketTimeout); err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink socket timeout: %w", err)
	}
	return &NetlinkKernel{h: h}, nil
}

// socketTimeout bounds every wait for an rtnetlink answer.
const socketTimeout = 10 * time.Second

// HasAddr reports whether a (device and prefix) is present, reading the
// addresses of its device only. A missing device has no address.
func (k *NetlinkKernel) HasAddr(a Addr) (bool, error) {
	l, err := k.h.LinkByName(a.Dev)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return false, nil
		}
		return false, fmt.Errorf("interface %s: %w", a.Dev, err)
	}
	addrs, err := k.h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return false, fmt.Errorf("list addresses of %s: %w", a.Dev, err)
	}
	for _, x := range addrs {
		if prefixOf(x.IPNet) == a.Prefix {
			return true, nil
		}
	}
	return false, nil
}

// Close releases the netlink sockets.
func (k *NetlinkKernel) Close() { k.h.Close() }

func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Snapshot returns the links, addresses and main-table routes.
func (k *NetlinkKernel) Snapshot() (*Snapshot, error) {
	links, err := k.h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	s := &Snapshot{}
	names := map[int]string{}
	for _, l := range links {
		at := l.Attrs()
		names[at.Index] = at.Name
		s.Links = append(s.Links, LinkInfo{Name: at.Name, Kind: l.Type(), Up: at.Flags&net.FlagUp != 0})
	}
	addrs, err := k.h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		s.Addrs = append(s.Addrs, Addr{Dev: names[a.LinkIndex], Prefix: prefixOf(a.IPNet), Label: a.Label})
	}
	routes, err := k.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Type != unix.RTN_UNICAST {
			continue
		}
		var dst netip.Prefix
		if r.Dst != nil {
			dst = prefixOf(r.Dst)
		} else if r.Family == unix.AF_INET6 {
			dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		} else {
			dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		rt := Route{Dst: dst, Dev: names[r.LinkIndex], Metric: r.Priority}
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			rt.Gateway = gw.Unmap()
		}
		if src, ok := netip.AddrFromSlice(r.Src); ok {
			rt.Src = src.Unmap()
		}
		s.Routes = append(s.Routes, rt)
	}
	if s.Fous, err = k.fous(); err != nil {
		return nil, err
	}
	return s, nil
}

func (k *NetlinkKernel) route(r Route) (*netlink.Route, error) {
	nr := &netlink.Route{Dst: ipNet(r.Dst), Priority: r.Metric, Table: unix.RT_TABLE_MAIN}
	if r.Gateway.IsValid() {
		nr.Gw = r.Gateway.AsSlice()
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if r.Dev != "" {
		l, err := k.h.LinkByName(r.Dev)
		if err != nil {
			return nil, fmt.Errorf("link %s: %w", r.Dev, err)
		}
		nr.LinkIndex = l.Attrs().Index
	}
	if !r.Gateway.IsValid() {
		nr.Scope = netlink.SCOPE_LINK
	}
	return nr, nil
}

// Add creates obj (a Link, LinkUp, Addr or Route). For a Route it
// replaces any route to the same prefix and metric.
func (k *NetlinkKernel) Add(obj Object) error {
	switch o := obj.(type) {
	case Link:
		d, err := newLink(o)
		if err != nil {
			return err
		}
		if err := k.h.LinkAdd(d); err != nil {
			return err
		}
		return k.h.LinkSetUp(d)
	case LinkUp:
		l, err := k.h.LinkByName(o.Name)
		if err != nil {
			return err
		}
		return k.h.LinkSetUp(l)
	case Addr:
		l, err := k.h.LinkByName(o.Dev)
		if err != nil {
			return err
		}
		na := &netlink.Addr{IPNet: ipNet(o.Prefix)}
		if o.Prefix.Addr().Is4() {
			na.Label = o.Label
		} else {
			na.Flags = unix.IFA_F_NODAD
		}
		return k.h.AddrAdd(l, na)
	case Route:
		nr, err := k.route(o)
		if err != nil {
			return err
		}
		return k.h.RouteReplace(nr)
	case Fou:
		return k.addFou(o)
	}
	return fmt.Errorf("unknown object %T", obj)
}

// Del removes obj; for a LinkUp it sets the link down.
func (k *NetlinkKernel) Del(obj Object) error {
	switch o := obj.(type) {
	case Link:
		l, err := k.h.LinkByName(o.Name)
		if err != nil {
			return err
		}
		return k.h.LinkDel(l)
	case LinkUp:
		l, err := k.h.LinkByName(o.Name)
		if err != nil {
			return err
		}
		return k.h.LinkSetDown(l)
	case Addr:
		l, err := k.h.LinkByName(o.Dev)
		if err != nil {
			return err
		}
		return k.h.AddrDel(l, &netlink.Addr{IPNet: ipNet(o.Prefix)})
	case Route:
		nr, err := k.route(o)
		if err != nil {
			return err
		}
		return k.h.RouteDel(nr)
	case Fou:
		return k.delFou(o)
	}
	return fmt.Errorf("unknown object %T", obj)
}

// Watch sends on the returned channel (without blocking, coalescing)
// whenever links, addresses or routes change, until done is closed. The
// subscriptions are opened in the calling
// thread's network namespace.
func (k *NetlinkKernel) Watch(done <-chan struct{}) (<-chan struct{}, error) {
	out := make(chan struct{}, 1)
	poke := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	errc := func(error) { poke() } // a lost subscription still triggers a resync
	addrs := make(chan netlink.AddrUpdate, 64)
	links := make(chan netlink.LinkUpdate, 64)
	routes := make(chan netlink.RouteUpdate, 64)
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{ErrorCallback: errc}); err != nil {
		return nil, fmt.Errorf("subscribe to addresses: %w", err)
	}
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{ErrorCallback: errc}); err != nil {
		return nil, fmt.Errorf("subscribe to links: %w", err)
	}
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{ErrorCallback: errc}); err != nil {
		return nil, fmt.Errorf("subscribe to routes: %w", err)
	}
	go func() {
		for addrs != nil || links != nil || routes != nil {
			select {
			case _, ok := <-addrs:
				if !ok {
					addrs = nil
				}
			case _, ok := <-links:
				if !ok {
					links = nil
				}
			case _, ok := <-routes:
				if !ok {
					routes = nil
				}
			}
			poke()
		}
	}()
	return out, nil
}

// LoadModule loads a kernel module such as ipip with modprobe(8), giving
// up after modprobe.DefaultTimeout.
func (k *NetlinkKernel) LoadModule(name string) error {
	return modprobe.Load(context.Background(), name, k.ModprobeTimeout)
}
