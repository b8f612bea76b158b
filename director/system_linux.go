package director

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/lvs-node/lvs-node/internal/hostnet"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/state"
	"github.com/lvs-node/lvs-node/internal/sysctls"
)

// OpenSystem connects an Engine for cfg to this machine's kernel: IPVS
// over generic netlink, sysctls recorded in the state dir, VIP addresses
// over rtnetlink, firewall marks and full-NAT in nftables (and eBPF). It
// first takes the director's lock on the state directory, so that no
// other process changes the same records (see state.TryLock). close
// releases them all.
func OpenSystem(cfg *Config, log *slog.Logger) (e *Engine, close func() error, err error) {
	lock, err := state.TryLock(cfg.Director.StateDir, "director")
	if err != nil {
		return nil, nil, err
	}
	e, closeAll, err := openSystem(cfg, log)
	if err != nil {
		lock.Release()
		return nil, nil, err
	}
	return e, func() error { return errors.Join(closeAll(), lock.Release()) }, nil
}

func openSystem(cfg *Config, log *slog.Logger) (*Engine, func() error, error) {
	k, err := ipvs.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open IPVS: %w", err)
	}
	sc, err := sysctls.Open(filepath.Join(cfg.Director.StateDir, sysctlsFile))
	if err != nil {
		k.Close()
		return nil, nil, err
	}
	host, err := hostnet.NewNetlinkKernel()
	if err != nil {
		k.Close()
		return nil, nil, err
	}
	deps := Deps{Kernel: k, Sysctls: sc, Host: host, Caps: ipvs.NewKernelFiles("/"), Log: log, Timeouts: k}
	closeAll := func() error { host.Close(); return k.Close() }
	if m, err := openMarker(cfg.Director.NFTable); err != nil {
		log.Warn("nftables unavailable: ports: services cannot be marked", "error", err)
	} else {
		deps.Marker = m
		closeAll = func() error { host.Close(); return errors.Join(m.Close(), k.Close()) }
	}
	closeAll = openFullNAT(cfg, &deps, closeAll, log)
	return NewEngine(cfg.Director.StateDir, deps), closeAll, nil
}

// OpenKernel connects to IPVS only, for read-only work such as a dry run:
// it takes no lock and writes nothing, so it works beside a running
// daemon.
func OpenKernel(cfg *Config) (*Engine, func() error, error) {
	k, err := ipvs.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open IPVS: %w", err)
	}
	return NewEngine(cfg.Director.StateDir, Deps{Kernel: k}), k.Close, nil
}
