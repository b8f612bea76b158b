package fullnat

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/director/fullnat/internal/egress"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/toa/format"
)

// Need is one thing full-NAT needs from the kernel, as Probe found it.
type Need struct {
	What   string
	Err    error  // nil when present
	Detail string // how it is met (when present)
}

// Probe checks that the kernel has what full-NAT needs: IPVS with
// conntrack support, nftables source NAT (IPv4 and IPv6), the egress
// program (BTF, the conntrack lookup kfunc, the verifier) and a tc
// egress hook (tcx, or clsact with cls_bpf). It works in a network
// namespace of its own, made for the probe and gone after it, so the
// host's network namespace is left as it is; kernel modules the checks
// need may get loaded, as the director would load them. Not being root
// shows as an error of the first need.
func Probe() []Need {
	out := make(chan []Need, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			out <- []Need{{What: "a network namespace to probe in", Err: err}}
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			out <- []Need{{What: "a network namespace to probe in", Err: fmt.Errorf("unshare: %w (probing needs root)", err)}}
			return
		}
		needs := probeHere()
		// Back home, the private namespace goes away with everything
		// made in it. A thread that cannot go back stays locked and
		// retires with this goroutine.
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		out <- needs
	}()
	return <-out
}

func probeHere() []Need {
	var needs []Need
	needs = append(needs, probeIPVS())
	needs = append(needs, probeNAT())
	prog, n := probeProgram()
	needs = append(needs, n)
	if prog != nil {
		defer prog.Close()
		needs = append(needs, probeHook(prog))
	} else {
		needs = append(needs, Need{What: "a tc egress hook", Err: errors.New("not checked: the program did not load")})
	}
	return needs
}

func probeIPVS() Need {
	n := Need{What: "IPVS with conntrack support (net.ipv4.vs.conntrack)"}
	c, err := ipvs.Open()
	if err != nil {
		n.Err = err
		return n
	}
	c.Close()
	if _, err := os.Stat("/proc/sys/net/ipv4/vs/conntrack"); err != nil {
		n.Err = fmt.Errorf("IPVS has no conntrack support (CONFIG_IP_VS_NFCT): %w", err)
		return n
	}
	n.Detail = "ip_vs"
	return n
}

func probeNAT() Need {
	n := Need{What: "nftables source NAT (ip and ip6)"}
	t, err := openNAT("lvs_probe")
	if err != nil {
		n.Err = err
		return n
	}
	defer t.close()
	spec := Spec{
		Pools: []Pool{{Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}}, {Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::2")}}},
		Targets: []Target{
			{Service: "probe", Protocol: ProtoTCP, VIP: netip.MustParseAddr("198.51.100.1"), VPort: 80, RS: netip.MustParseAddr("192.0.2.11"), Pool: 0},
			{Service: "probe", Protocol: ProtoTCP, VIP: netip.MustParseAddr("2001:db8:1::1"), VPort: 80, RS: netip.MustParseAddr("2001:db8::11"), Pool: 1},
		},
	}
	if _, err := t.set(spec); err != nil {
		n.Err = err
		return n
	}
	n.Detail = "nft_chain_nat"
	return n
}

func probeProgram() (*ebpf.Program, Need) {
	n := Need{What: "the TOA writer (eBPF: BTF, bpf_skb_ct_lookup, verifier)"}
	if err := rlimit.RemoveMemlock(); err != nil {
		n.Err = err
		return nil, n
	}
	spec, err := egress.Spec()
	if err != nil {
		n.Err = err
		return nil, n
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		n.Err = explainLoad(err)
		return nil, n
	}
	defer coll.Close()
	prog, err := coll.Programs[egress.Prog].Clone()
	if err != nil {
		n.Err = err
		return nil, n
	}
	n.Detail = fmt.Sprintf("formats %s", format.AllFormats)
	return prog, n
}

func probeHook(prog *ebpf.Program) Need {
	n := Need{What: "a tc egress hook (tcx, or clsact and cls_bpf)"}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lvsprobe0"}, PeerName: "lvsprobe1"}
	if err := netlink.LinkAdd(veth); err != nil {
		n.Err = fmt.Errorf("a veth pair to attach to: %w", err)
		return n
	}
	l, err := netlink.LinkByName("lvsprobe0")
	if err != nil {
		n.Err = err
		return n
	}
	i := iface{index: l.Attrs().Index, name: "lvsprobe0"}
	tl, err := link.AttachTCX(link.TCXOptions{Interface: i.index, Program: prog, Attach: ebpf.AttachTCXEgress})
	if err == nil {
		tl.Close()
		n.Detail = ModeTCX
		return n
	}
	if !errors.Is(err, ebpf.ErrNotSupported) {
		n.Err = fmt.Errorf("tcx: %w", err)
		return n
	}
	if _, err := attachTC(i, prog, Hook{}, func(Hook) error { return nil }); err != nil {
		n.Err = err
		return n
	}
	n.Detail = ModeTC
	return n
}

// ProbeError joins the needs that are missing into one error, or
// returns nil when all are met.
func ProbeError(needs []Need) error {
	var msgs []string
	for _, n := range needs {
		if n.Err != nil {
			msgs = append(msgs, fmt.Sprintf("%s: %v", n.What, n.Err))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrKernel, strings.Join(msgs, "; "))
}
