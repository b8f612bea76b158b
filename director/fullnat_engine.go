package director

import (
	"errors"
	"fmt"

	"github.com/lvs-node/lvs-node/director/fullnat"
)

// FullNATKernel is the kernel side of full-NAT beside the IPVS table: source
// NAT rules and the TOA writer (a *fullnat.Manager). Apply records each
// addition in rec (through save) before making it.
type FullNATKernel interface {
	Apply(spec fullnat.Spec, rec *fullnat.Record, save func() error, verify bool) ([]string, error)
	Remove(rec *fullnat.Record, save func() error) ([]string, error)
}

// setFullNAT makes full-NAT match cfg. Before IPVS changes (before is
// true) it puts in place what both the configuration in force and cfg
// ask for, so that a connection IPVS forwards in the meantime is never
// sent untranslated; afterwards it puts in place exactly what cfg asks.
// verify reads the kernel back (a resync); otherwise an unchanged spec
// costs nothing.
func (e *Engine) setFullNAT(cfg *Config, before, verify bool) error {
	rec := e.rec
	spec := cfg.fullNATSpec()
	if before && e.cfg != nil {
		spec = spec.Union(e.cfg.fullNATSpec())
	}
	if spec.Empty() && rec.FullNAT.Empty() {
		return nil
	}
	if e.deps.FullNAT == nil {
		return errors.New("full-NAT needs nftables and eBPF, which are not available here")
	}
	changes, err := e.deps.FullNAT.Apply(spec, &rec.FullNAT, func() error { return rec.save(e.stateDir) }, verify)
	for _, c := range changes {
		e.log.Info("full-NAT", "change", c)
	}
	if err != nil {
		return fmt.Errorf("full-NAT: %w", err)
	}
	return nil
}

// downFullNAT removes what full-NAT added (lvs-node director down).
func (e *Engine) downFullNAT(rec *records) error {
	if rec.FullNAT.Empty() {
		return nil
	}
	if e.deps.FullNAT == nil {
		return errors.New("full-NAT was set up here but nftables and eBPF are not available to remove it")
	}
	changes, err := e.deps.FullNAT.Remove(&rec.FullNAT, func() error { return rec.save(e.stateDir) })
	for _, c := range changes {
		e.log.Info("full-NAT", "change", c)
	}
	if err != nil {
		return fmt.Errorf("remove full-NAT: %w", err)
	}
	return nil
}
