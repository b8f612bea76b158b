package fullnat

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/state"
)

// The cls_bpf filter of the tc fallback: a priority of its own ("LV")
// on the clsact egress hook, so that other filters stay as they are.
const (
	tcPriority = 0x4c56
	tcName     = "lvs-node-fullnat"
)

var tcHandle = netlink.MakeHandle(0, 1)

// iface is an interface towards real servers.
type iface struct {
	index int
	name  string
}

// routeInterfaces returns the interfaces the routes to the real servers
// leave by. The egress program needs an Ethernet header in front of IP.
func routeInterfaces(servers []netip.Addr) ([]iface, error) {
	var out []iface
	for _, rs := range servers {
		routes, err := netlink.RouteGet(net.IP(rs.AsSlice()))
		if err != nil || len(routes) == 0 {
			return nil, fmt.Errorf("no route to real server %s: %w", rs, errOr(err, errors.New("no route")))
		}
		idx := routes[0].LinkIndex
		if slices.ContainsFunc(out, func(i iface) bool { return i.index == idx }) {
			continue
		}
		l, err := netlink.LinkByIndex(idx)
		if err != nil {
			return nil, fmt.Errorf("interface %d towards real server %s: %w", idx, rs, err)
		}
		a := l.Attrs()
		if a.EncapType != "ether" {
			return nil, fmt.Errorf("real server %s is reached through %s, a %s interface: the TOA writer needs Ethernet", rs, a.Name, a.EncapType)
		}
		out = append(out, iface{index: idx, name: a.Name})
	}
	return out, nil
}

func errOr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

func linkPin(dir string, ifindex int) string {
	return filepath.Join(dir, linkPrefix+strconv.Itoa(ifindex))
}

// attach makes the egress program p.prog run on i. record is called
// with the hook before anything is added to the kernel. A hook that runs
// the program already is left alone.
func attach(dir string, i iface, p *program, old Hook, have bool, record func(Hook) error) (string, error) {
	if have && old.Mode == ModeTC {
		return attachTC(i, p.prog, old, record)
	}
	if have && old.Mode == ModeTCX {
		return attachTCX(dir, i, p.prog, record)
	}
	msg, err := attachTCX(dir, i, p.prog, record)
	if errors.Is(err, ebpf.ErrNotSupported) {
		// Before Linux 6.6: a cls_bpf filter on clsact.
		return attachTC(i, p.prog, Hook{}, record)
	}
	return msg, err
}

func progID(p *ebpf.Program) ebpf.ProgramID {
	info, err := p.Info()
	if err != nil {
		return 0
	}
	id, _ := info.ID()
	return id
}

// attachTCX attaches prog to the egress of i through a tcx link pinned
// in dir, or moves the pinned link to prog.
func attachTCX(dir string, i iface, prog *ebpf.Program, record func(Hook) error) (string, error) {
	path := linkPin(dir, i.index)
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		defer l.Close()
		info, err := l.Info()
		if err == nil && info.TCX() != nil && int(info.TCX().Ifindex) == i.index {
			if info.Program == progID(prog) {
				return "", nil
			}
			if err := l.Update(prog); err != nil {
				return "", fmt.Errorf("replace the egress program on %s: %w", i.name, err)
			}
			return fmt.Sprintf("replace egress program on %s (tcx)", i.name), nil
		}
		// A link of an interface that is gone: drop it.
		_ = l.Unpin()
	}
	if err := record(Hook{Interface: i.name, Ifindex: i.index, Mode: ModeTCX}); err != nil {
		return "", err
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: i.index, Program: prog, Attach: ebpf.AttachTCXEgress})
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return "", err
		}
		return "", fmt.Errorf("attach the egress program to %s (tcx): %w", i.name, err)
	}
	defer l.Close()
	if err := state.ReplacePin(l, path); err != nil {
		return "", err
	}
	return fmt.Sprintf("attach egress program to %s (tcx)", i.name), nil
}

// ourFilter finds lvs-node's filter among the egress filters of l.
func ourFilter(l netlink.Link) (*netlink.BpfFilter, error) {
	fs, err := netlink.FilterList(l, netlink.HANDLE_MIN_EGRESS)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		if bf, ok := f.(*netlink.BpfFilter); ok && bf.Priority == tcPriority && bf.Handle == tcHandle {
			return bf, nil
		}
	}
	return nil, nil
}

func clsact(l netlink.Link) (bool, error) {
	qs, err := netlink.QdiscList(l)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(qs, func(q netlink.Qdisc) bool { return q.Type() == "clsact" }), nil
}

// attachTC puts prog on the egress of i as a cls_bpf filter of the
// clsact qdisc (added, and recorded as added, when missing), replacing
// lvs-node's filter in place when it runs another program.
func attachTC(i iface, prog *ebpf.Program, old Hook, record func(Hook) error) (string, error) {
	l, err := netlink.LinkByIndex(i.index)
	if err != nil {
		return "", fmt.Errorf("interface %s: %w", i.name, err)
	}
	h := Hook{Interface: i.name, Ifindex: i.index, Mode: ModeTC, Clsact: old.Clsact}
	has, err := clsact(l)
	if err != nil {
		return "", fmt.Errorf("qdiscs of %s: %w", i.name, err)
	}
	if !has {
		h.Clsact = true
		if err := record(h); err != nil {
			return "", err
		}
		q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: i.index,
			Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
		if err := netlink.QdiscAdd(q); err != nil {
			return "", fmt.Errorf("add clsact qdisc to %s: %w", i.name, err)
		}
	} else if err := record(h); err != nil {
		return "", err
	}
	cur, err := ourFilter(l)
	if err != nil {
		return "", fmt.Errorf("filters of %s: %w", i.name, err)
	}
	if cur != nil && ebpf.ProgramID(cur.Id) == progID(prog) {
		return "", nil
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: i.index, Parent: netlink.HANDLE_MIN_EGRESS,
			Handle: tcHandle, Protocol: unix.ETH_P_ALL, Priority: tcPriority},
		Fd: prog.FD(), Name: tcName, DirectAction: true,
	}
	if err := netlink.FilterReplace(f); err != nil {
		return "", fmt.Errorf("attach the egress program to %s (tc): %w", i.name, err)
	}
	verb := "attach"
	if cur != nil {
		verb = "replace"
	}
	return fmt.Sprintf("%s egress program on %s (tc)", verb, i.name), nil
}

// detach removes the egress program from the interface of h: the tcx
// link, or lvs-node's filter and the clsact qdisc when lvs-node added
// it and nothing else uses it. An interface that is gone took its hook
// along.
func detach(dir string, h Hook) (string, error) {
	if h.Mode == ModeTCX {
		l, err := link.LoadPinnedLink(linkPin(dir, h.Ifindex), nil)
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("tcx link of %s: %w", h.Interface, err)
		}
		defer l.Close()
		if err := l.Unpin(); err != nil {
			return "", fmt.Errorf("unpin the tcx link of %s: %w", h.Interface, err)
		}
		return fmt.Sprintf("detach egress program from %s (tcx)", h.Interface), l.Close()
	}
	l, err := netlink.LinkByIndex(h.Ifindex)
	if err != nil || l.Attrs().Name != h.Interface {
		return "", nil
	}
	msg := ""
	f, err := ourFilter(l)
	if err != nil {
		return "", fmt.Errorf("filters of %s: %w", h.Interface, err)
	}
	if f != nil {
		if err := netlink.FilterDel(f); err != nil {
			return "", fmt.Errorf("detach the egress program from %s (tc): %w", h.Interface, err)
		}
		msg = fmt.Sprintf("detach egress program from %s (tc)", h.Interface)
	}
	if !h.Clsact {
		return msg, nil
	}
	// The clsact qdisc lvs-node added goes only when no other filter
	// sits on it.
	for _, parent := range []uint32{netlink.HANDLE_MIN_EGRESS, netlink.HANDLE_MIN_INGRESS} {
		fs, err := netlink.FilterList(l, parent)
		if err != nil {
			return msg, fmt.Errorf("filters of %s: %w", h.Interface, err)
		}
		if len(fs) > 0 {
			return msg, nil
		}
	}
	q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: h.Ifindex,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
	if err := netlink.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return msg, fmt.Errorf("remove the clsact qdisc of %s: %w", h.Interface, err)
	}
	return msg, nil
}
