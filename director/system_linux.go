package director

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/lvs-node/lvs-node/internal/hostnet"
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
	host, err := hostnet.NewNetlinkKernel()
	if err != nil {
		k.Close()
		return nil, nil, err
	}
	deps := Deps{Kernel: k, Sysctls: sc, Host: host, Log: log, Timeouts: k}
	closeAll := func() error { host.Close(); return k.Close() }
	if m, err := openMarker(cfg.Director.NFTable); err != nil {
		log.Warn("nftables unavailable: ports: services cannot be marked", "error", err)
	} else {
		deps.Marker = m
		closeAll = func() error { host.Close(); return errors.Join(m.Close(), k.Close()) }
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
