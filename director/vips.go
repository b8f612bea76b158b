package director

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/lvs-node/lvs-node/internal/hostnet"
)

// vipAddr is a VIP as bound on the director's VIP interface: a host
// address (/32 or /128).
func vipAddr(ifname string, a netip.Addr) hostnet.Addr {
	return hostnet.Addr{Dev: ifname, Prefix: netip.PrefixFrom(a, a.BitLen())}
}

// ledger returns the record of what lvs-node added to the host, saving
// into the records file.
func (e *Engine) ledger(rec *records) *hostnet.Ledger {
	return &hostnet.Ledger{Rec: rec.Host, Save: func(r *hostnet.Record) error {
		rec.Host = *r
		return rec.save(e.stateDir)
	}}
}

// bindVIPs puts the VIPs of bind_vip services on the VIP interface and
// takes off those lvs-node added that are no longer wanted. A VIP present
// before lvs-node binds it (keepalived's VRRP, an operator) is not
// lvs-node's: it is not recorded and never removed.
func (e *Engine) bindVIPs(cfg *Config, vips []netip.Addr, rec *records) error {
	if len(vips) == 0 && len(rec.Host.Addrs) == 0 {
		return nil
	}
	if e.deps.Host == nil {
		return errors.New("bind_vip is set but no address manager is available")
	}
	want := make([]hostnet.Addr, len(vips))
	for i, a := range vips {
		want[i] = vipAddr(cfg.Director.VIPInterface, a)
	}
	led := e.ledger(rec)
	for _, a := range slices.Clone(rec.Host.Addrs) {
		if slices.Contains(want, a) {
			continue
		}
		if err := e.dropVIP(led, a); err != nil {
			return err
		}
	}
	for _, a := range want {
		present, err := e.deps.Host.HasAddr(a)
		if err != nil {
			return fmt.Errorf("VIP %s: %w", a.Prefix.Addr(), err)
		}
		if present && !led.Rec.OwnsAddr(a) {
			continue // someone else's
		}
		added, err := led.AddAddr(e.deps.Host, a, present)
		if err != nil {
			return fmt.Errorf("bind VIP: %w", err)
		}
		if added {
			e.log.Info("VIP bound", "address", a.Prefix.Addr(), "interface", a.Dev)
		}
	}
	return nil
}

// dropVIP removes a VIP lvs-node added.
func (e *Engine) dropVIP(led *hostnet.Ledger, a hostnet.Addr) error {
	present, err := e.deps.Host.HasAddr(a)
	if err != nil {
		return fmt.Errorf("VIP %s: %w", a.Prefix.Addr(), err)
	}
	removed, err := led.DropAddr(e.deps.Host, a, present)
	if err != nil {
		return err
	}
	if removed {
		e.log.Info("VIP removed", "address", a.Prefix.Addr(), "interface", a.Dev)
	}
	return nil
}

// unbindVIPs removes every VIP lvs-node added.
func (e *Engine) unbindVIPs(rec *records) error {
	if len(rec.Host.Addrs) == 0 {
		return nil
	}
	if e.deps.Host == nil {
		return errors.New("VIPs are recorded but no address manager is available")
	}
	led := e.ledger(rec)
	var errs []error
	for _, a := range slices.Clone(rec.Host.Addrs) {
		if err := e.dropVIP(led, a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
