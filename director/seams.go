package director

import (
	"context"
	"log/slog"

	"github.com/lvs-node/lvs-node/internal/hostnet"
	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// Kernel reads and writes the IPVS table (an *ipvs.Client; ipvstest.Kernel
// in tests).
type Kernel interface {
	Table(ctx context.Context) (*ipvs.Table, error)
	Apply(ctx context.Context, ops []ipvs.Op) error
}

// Marker replaces the firewall-mark rules of the nftables table lvs-node
// owns.
type Marker interface {
	Set(rules []MarkRule) error // atomic replace; an empty list keeps an empty table
	Delete() error              // remove the table
}

// SysctlStore reads and changes sysctls and remembers their original
// values (a *sysctls.Recorder).
type SysctlStore interface {
	Get(key string) (string, error)
	Set(key, value string) error // key relative to /proc/sys, slash form
	// List names the entries of a sysctl directory (net/ipv6/conf).
	List(dir string) ([]string, error)
	Restore() error
}

// Host adds and removes the VIPs the director binds (a
// *hostnet.NetlinkKernel).
type Host interface {
	HasAddr(a hostnet.Addr) (bool, error)
	Add(obj hostnet.Object) error
	Del(obj hostnet.Object) error
}

// Deps are the kernel seams an Engine works through. Marker, Sysctls and
// Host may be nil when the configuration never needs them.
type Deps struct {
	Kernel  Kernel
	Marker  Marker
	Sysctls SysctlStore
	Host    Host
	// Caps tells what the running kernel can do; a reload the kernel
	// cannot carry out (see CheckHost) is refused. nil checks nothing.
	Caps    KernelCaps
	FullNAT FullNATKernel // nil when nftables or eBPF is unavailable
	Log     *slog.Logger
	// Timeouts sets director.timeouts (timeouts.go); nil when unused.
	Timeouts TimeoutStore
}
