package director

import (
	"errors"
	"log/slog"

	"github.com/lvs-node/lvs-node/director/fullnat"
)

// FullNATTable is the name of the nftables tables ("ip" and "ip6") that
// hold the source NAT of full-NAT services: the firewall-mark table's
// name with "_fullnat".
func FullNATTable(cfg *Config) string { return cfg.Director.NFTable + "_fullnat" }

// openFullNAT adds full-NAT to deps when nftables can be reached, and
// returns closeAll extended to release it.
func openFullNAT(cfg *Config, deps *Deps, closeAll func() error, log *slog.Logger) func() error {
	m, err := fullnat.Open(fullnat.Options{Table: FullNATTable(cfg)})
	if err != nil {
		log.Warn("nftables unavailable: full-NAT services cannot be set up", "error", err)
		return closeAll
	}
	deps.FullNAT = m
	return func() error { return errors.Join(m.Close(), closeAll()) }
}
