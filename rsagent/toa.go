package rsagent

import (
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/toa"
)

// TOA is the realserver.toa block: eBPF TOA for full-NAT balancers.
type TOA struct {
	Enabled bool `yaml:"enabled"`
	// Cgroup is the cgroup v2 directory whose processes see client
	// addresses; empty means the root of the unified hierarchy.
	Cgroup string `yaml:"cgroup"`
	// TrustedSources are the balancers' source prefixes.
	TrustedSources []string `yaml:"trusted_sources"`
	// Kinds are the option kinds to read (254, 253, 200, 28); default
	// 254 and 253.
	Kinds []int `yaml:"kinds"`
	// Force attaches although a TOA kernel module is loaded.
	Force bool `yaml:"force"`
	// Slots is the size of eBPF TOA's preallocated address array (a
	// power of two; default 65536): connections open at once beyond it
	// keep their address in socket storage, which costs more.
	Slots int `yaml:"slots"`

	// Config is the parsed block, filled by LoadConfig.
	Config toa.Config `yaml:"-"`
}

func validateTOA(rs *Realserver, doc *config.Doc, add func(*config.Error)) {
	t := rs.TOA
	if t == nil {
		return
	}
	key := func(k string) string { return config.Join("realserver.toa", k) }
	t.Config = toa.Config{Cgroup: t.Cgroup, Slots: t.Slots}
	if err := toa.CheckSlots(t.Slots); err != nil {
		add(doc.Errorf(key("slots"), "%v", err))
	}
	if t.Cgroup != "" && !filepath.IsAbs(t.Cgroup) {
		add(doc.Errorf(key("cgroup"), "want an absolute path to a cgroup v2 directory, got %q", t.Cgroup))
	}
	for i, s := range t.TrustedSources {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				add(doc.Errorf(config.Index(key("trusted_sources"), i), "want a prefix such as 10.0.0.0/24, got %q", s))
				continue
			}
		}
		if p != p.Masked() {
			add(doc.Errorf(config.Index(key("trusted_sources"), i), "%s has host bits set; did you mean %s?", p, p.Masked()))
			continue
		}
		t.Config.Trusted = append(t.Config.Trusted, p.Masked())
	}
	if t.Enabled && len(t.TrustedSources) == 0 {
		add(doc.Errorf(key("trusted_sources"), "the balancers' source prefixes are required: options from anyone else are ignored"))
	}
	for i, k := range t.Kinds {
		if k < 0 || k > 255 {
			add(doc.Errorf(config.Index(key("kinds"), i), "want an option kind: 254, 253, 200 or 28, got %d", k))
			continue
		}
		t.Config.Kinds = append(t.Config.Kinds, uint8(k))
	}
	if _, err := t.Config.Formats(); err != nil {
		add(doc.Errorf(key("kinds"), "%v", err))
	}
}

// TOAHost is what the agent needs from package toa.
type TOAHost interface {
	Attach(toa.Config, bool) ([]string, error)
	Detach() ([]string, error)
}

// NewTOAHost returns the host's eBPF TOA, pinned in the default place.
func NewTOAHost() TOAHost { return toaHost{} }

type toaHost struct{}

func (toaHost) Attach(c toa.Config, force bool) ([]string, error) {
	return toa.Attach(c, toa.Options{Force: force})
}
func (toaHost) Detach() ([]string, error) { return toa.Detach(toa.Options{}) }

// ApplyTOA attaches (or updates) eBPF TOA as realserver.toa says; with
// enabled: false it detaches it; without the block it does nothing. A
// refusal is reported as a configuration error at the key it concerns
// and changes nothing else: the rest of the real server stays applied.
func (a *Agent) ApplyTOA(h TOAHost) ([]string, error) {
	a.mu.Lock()
	t, doc := a.cfg.Realserver.TOA, a.doc
	a.mu.Unlock()
	if t == nil || h == nil {
		return nil, nil
	}
	if !t.Enabled {
		return prefixed(h.Detach())
	}
	changes, err := prefixed(h.Attach(t.Config, t.Force))
	if err == nil {
		return changes, nil
	}
	k := "realserver.toa.enabled"
	switch {
	case errors.Is(err, toa.ErrNoCgroup):
		k = "realserver.toa.cgroup"
	case errors.Is(err, toa.ErrModuleLoaded):
		k = "realserver.toa.force"
	}
	if !doc.Has(k) {
		k = "realserver.toa"
	}
	return changes, config.Errors{doc.Errorf(k, "toa: %v", err)}
}

// RemoveTOA detaches eBPF TOA when the configuration has a toa block
// (lvs-node realserver down).
func (a *Agent) RemoveTOA(h TOAHost) ([]string, error) {
	a.mu.Lock()
	t := a.cfg.Realserver.TOA
	a.mu.Unlock()
	if t == nil || h == nil {
		return nil, nil
	}
	return prefixed(h.Detach())
}

func prefixed(changes []string, err error) ([]string, error) {
	for i, c := range changes {
		changes[i] = "toa: " + c
	}
	return changes, err
}

// toaKeeper keeps eBPF TOA applied in the daemon: each pass re-applies it
// (cheap when nothing changed) and logs a refusal once.
type toaKeeper struct {
	h       TOAHost
	lastErr string
}

func (k *toaKeeper) pass(a *Agent, log *slog.Logger, m *Metrics) {
	if k == nil || k.h == nil {
		return
	}
	changes, err := a.ApplyTOA(k.h)
	for _, c := range changes {
		log.Info("applied", "change", c)
	}
	if err != nil {
		m.fails.Inc()
		if msg := err.Error(); msg != k.lastErr {
			log.Error("eBPF TOA not applied; the rest of the real server is", "err", strings.ReplaceAll(msg, "\n", "; "))
			k.lastErr = msg
		}
		return
	}
	if k.lastErr != "" {
		log.Info("eBPF TOA applied again")
		k.lastErr = ""
	}
}
