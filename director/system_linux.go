package director

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/sysctls"
)

// OpenSystem connects an Engine for cfg to this machine's kernel: IPVS
// over generic netlink, sysctls recorded in the state dir, VIP addresses
// over rtnetlink and firewall marks in nftables. close releases them.
func OpenSystem(cfg *Config, log *slog.Logger) (e *Engine, close func() error, err error) {
	k, err := ipvs.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open IPVS: %w", err)
	}
	sc, err := sysctls.Open(filepath.Join(cfg.Director.StateDir, sysctlsFile))
	if err != nil {
		k.Close()
		return nil, nil, err
	}
	deps := Deps{Kernel: k, Sysctls: sc, Addrs: linkAddrs{}, Log: log}
	closeAll := k.Close
	if m, err := openMarker(cfg.Director.NFTable); err != nil {
		log.Warn("nftables unavailable: ports: services cannot be marked", "error", err)
	} else {
		deps.Marker = m
		closeAll = func() error { return errors.Join(m.Close(), k.Close()) }
	}
	return NewEngine(cfg.Director.StateDir, deps), closeAll, nil
}

// OpenKernel connects to IPVS only, for read-only work such as a dry run.
func OpenKernel(cfg *Config) (*Engine, func() error, error) {
	k, err := ipvs.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open IPVS: %w", err)
	}
	return NewEngine(cfg.Director.StateDir, Deps{Kernel: k}), k.Close, nil
}

// linkAddrs adds VIPs to interfaces with rtnetlink.
type linkAddrs struct{}

func vipAddr(a netip.Addr) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}}
}

func (linkAddrs) AddAddr(ifname string, a netip.Addr) error {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	if err := netlink.AddrReplace(l, vipAddr(a)); err != nil {
		return fmt.Errorf("add %s to %s: %w", a, ifname, err)
	}
	return nil
}

func (linkAddrs) DelAddr(ifname string, a netip.Addr) error {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	if err := netlink.AddrDel(l, vipAddr(a)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s from %s: %w", a, ifname, err)
	}
	return nil
}
