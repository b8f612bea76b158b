package toa

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/lvs-node/lvs-node/toa/format"
)

// Defaults.
const (
	// DefaultPinDir is where programs, maps and links are pinned.
	DefaultPinDir = "/sys/fs/bpf/lvs-node/toa"
	// DefaultRoot is the root of the /proc and /sys trees read.
	DefaultRoot = "/"
	// DefaultSlots is how many connections' addresses eBPF TOA keeps in
	// its preallocated array (40 bytes each) unless configured; a
	// connection whose slot another holds keeps its address in socket
	// storage instead.
	DefaultSlots = 1 << 16
	// MinSlots and MaxSlots bound Config.Slots (40 KiB to 160 MiB).
	MinSlots = 1 << 10
	MaxSlots = 1 << 22
)

// DefaultKinds are the option kinds read when none are configured: 254
// (LVS, DPVS, cloud balancers) and 253 (Alibaba LVS IPv6).
func DefaultKinds() []uint8 { return []uint8{254, 253} }

// Config is what eBPF TOA is asked to do.
type Config struct {
	// Cgroup is the cgroup v2 directory whose processes get real client
	// addresses (and all below it). Empty means the root of the unified
	// hierarchy (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid
	// hosts).
	Cgroup string
	// Trusted are the balancers' source prefixes. Options from any other
	// source are ignored and counted as untrusted. Empty trusts nothing.
	Trusted []netip.Prefix
	// Kinds are the option kinds to read (see format.ForKinds); empty
	// means DefaultKinds.
	Kinds []uint8
	// Slots is the size of the preallocated address array, a power of
	// two from MinSlots to MaxSlots; 0 means DefaultSlots. Changing it
	// replaces the array: connections open then keep the balancer's
	// address.
	Slots int
}

// SlotCount returns the size of the address array c asks for.
func (c Config) SlotCount() int {
	if c.Slots == 0 {
		return DefaultSlots
	}
	return c.Slots
}

// CheckSlots validates a slot count (0 for the default).
func CheckSlots(n int) error {
	if n != 0 && (n < MinSlots || n > MaxSlots || n&(n-1) != 0) {
		return fmt.Errorf("slots %d: want a power of two from %d to %d (default %d)", n, MinSlots, MaxSlots, DefaultSlots)
	}
	return nil
}

// Formats returns the formats c enables.
func (c Config) Formats() (format.Set, error) {
	kinds := c.Kinds
	if len(kinds) == 0 {
		kinds = DefaultKinds()
	}
	return format.ForKinds(kinds...)
}

// Check validates c without looking at the host.
func (c Config) Check() error {
	if c.Cgroup != "" && !filepath.IsAbs(c.Cgroup) {
		return fmt.Errorf("cgroup %q: want an absolute path", c.Cgroup)
	}
	if _, err := c.Formats(); err != nil {
		return err
	}
	if err := CheckSlots(c.Slots); err != nil {
		return err
	}
	for _, p := range c.Trusted {
		if !p.IsValid() || p != p.Masked() {
			return fmt.Errorf("trusted prefix %s: want a masked prefix such as %s", p, p.Masked())
		}
	}
	return nil
}

// normalize returns the trusted prefixes as IPv6 prefixes (IPv4 as
// ::ffff:a.b.c.d/96+len), sorted and without repeats: the keys of the
// trusted map.
func (c Config) normalize() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range c.Trusted {
		out = append(out, to6(p))
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}

func to6(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4() {
		return netip.PrefixFrom(netip.AddrFrom16(p.Addr().As16()), p.Bits()+96)
	}
	return p
}

func from6(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// Options say where on the host eBPF TOA lives.
type Options struct {
	// Root is the root of the /proc and /sys trees read for kernel
	// facts and modules (DefaultRoot when empty); tests point it at
	// fixtures. BPF objects and cgroups are always the live ones.
	Root string
	// PinDir is the BPF file system directory of the pins
	// (DefaultPinDir when empty).
	PinDir string
	// Force attaches although a TOA kernel module is loaded (both would
	// then rewrite addresses).
	Force bool
}

func (o Options) root() string {
	if o.Root == "" {
		return DefaultRoot
	}
	return o.Root
}

func (o Options) pinDir() string {
	if o.PinDir == "" {
		return DefaultPinDir
	}
	return o.PinDir
}

// path returns p (absolute, such as /proc/net/toa_stats) under the root.
func (o Options) path(p string) string { return filepath.Join(o.root(), p) }
