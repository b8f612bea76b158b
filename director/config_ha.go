package director

import (
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// Defaults of the HA settings.
const (
	DefaultBIRDInclude = "/etc/bird/lvs-node-vips.conf"
	DefaultBirdc       = "birdc"
	DefaultBIRDSocket  = "/run/bird/bird.ctl" // Debian's bird2
	DefaultBIRDTimeout = 10 * time.Second
	DefaultMinUp       = 1
)

// HAConfig is the high-availability part of director.yaml: the kernel's
// connection-sync daemon (active-backup behind keepalived's VRRP, and
// active-active) and the announcement of VIPs to routers through BIRD
// (active-active behind ECMP). Both are off when absent.
type HAConfig struct {
	SyncDaemon *SyncDaemonConfig `yaml:"sync_daemon"`
	Announce   *AnnounceConfig   `yaml:"announce"`
}

// SyncDaemonConfig is sync_daemon: the sync daemons lvs-node runs. Which
// of master and backup run follows the HA role (see SyncStates).
type SyncDaemonConfig struct {
	Interface string `yaml:"interface"`
	SyncID    uint32 `yaml:"sync_id"`
	MaxLen    uint16 `yaml:"max_len"`
	Group     string `yaml:"group"`
	Port      uint16 `yaml:"port"`
	TTL       uint8  `yaml:"ttl"`

	group netip.Addr // filled by validation
}

// Daemon is the sync daemon of state s this configuration asks for.
func (s *SyncDaemonConfig) Daemon(st ipvs.SyncState) ipvs.SyncDaemon {
	return ipvs.SyncDaemon{State: st, Interface: s.Interface, SyncID: s.SyncID, MaxLen: s.MaxLen, Group: s.group, Port: s.Port, TTL: s.TTL}
}

// AnnounceConfig is announce: which VIPs the director asks its BIRD to
// announce, and when.
type AnnounceConfig struct {
	BIRD BIRDConfig `yaml:"bird"`
	// MinUp is the number of real servers able to take new connections
	// (effective weight above 0) every service of a VIP needs for the VIP
	// to be announced. 0 announces while the director is in sync,
	// whatever the health of its real servers.
	MinUp *int `yaml:"min_up"`
}

// BIRDConfig is announce.bird.
type BIRDConfig struct {
	// IncludeFile is written by lvs-node (atomically) and included by
	// bird.conf.
	IncludeFile string `yaml:"include_file"`
	// Birdc is the birdc program (a name is looked up on PATH).
	Birdc string `yaml:"birdc"`
	// Socket is BIRD's control socket.
	Socket string `yaml:"socket"`
	// Timeout bounds one "birdc configure".
	Timeout config.Duration `yaml:"timeout"`
}

// MinUpOrDefault is min_up with its default.
func (a *AnnounceConfig) MinUpOrDefault() int {
	if a.MinUp == nil {
		return DefaultMinUp
	}
	return *a.MinUp
}

// ha validates the HA settings and fills their defaults.
func (v *validator) ha(h *HAConfig) {
	if s := h.SyncDaemon; s != nil {
		const p = "sync_daemon"
		switch {
		case s.Interface == "":
			v.errorf(config.Join(p, "interface"), "the sync daemon needs the interface it multicasts on")
		case len(s.Interface) > 15 || strings.ContainsAny(s.Interface, "/ \t"):
			v.errorf(config.Join(p, "interface"), "%q is not an interface name (at most 15 characters, no '/' or space)", s.Interface)
		}
		if s.SyncID > 255 {
			v.errorf(config.Join(p, "sync_id"), "must be from 0 to 255, got %d", s.SyncID)
		}
		if s.Group != "" {
			g, err := netip.ParseAddr(s.Group)
			if err != nil || !g.IsMulticast() || g.Zone() != "" {
				v.errorf(config.Join(p, "group"), "want an IPv4 or IPv6 multicast address such as 224.0.0.81, got %q", s.Group)
			} else {
				s.group = g
			}
		}
		if s.MaxLen != 0 && s.MaxLen < 100 {
			v.errorf(config.Join(p, "max_len"), "must be 0 (from the MTU) or at least 100 bytes, got %d", s.MaxLen)
		}
	}
	if a := h.Announce; a != nil {
		const p = "announce"
		b := &a.BIRD
		bp := config.Join(p, "bird")
		if b.IncludeFile == "" {
			b.IncludeFile = DefaultBIRDInclude
		} else if !filepath.IsAbs(b.IncludeFile) {
			v.errorf(config.Join(bp, "include_file"), "must be an absolute path, got %q", b.IncludeFile)
		}
		if b.Birdc == "" {
			b.Birdc = DefaultBirdc
		}
		if b.Socket == "" {
			b.Socket = DefaultBIRDSocket
		} else if !filepath.IsAbs(b.Socket) {
			v.errorf(config.Join(bp, "socket"), "must be an absolute path, got %q", b.Socket)
		}
		if !v.doc.Has(config.Join(bp, "timeout")) {
			b.Timeout = config.Duration(DefaultBIRDTimeout)
		} else if t := b.Timeout.D(); t < 100*time.Millisecond || t > 5*time.Minute {
			v.errorf(config.Join(bp, "timeout"), "must be from 100ms to 5m, got %s", b.Timeout)
		}
		if a.MinUp != nil && *a.MinUp < 0 {
			v.errorf(config.Join(p, "min_up"), "must be 0 or more, got %d", *a.MinUp)
		}
	}
}
