package healthz

import (
	"net/netip"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// SorryServer is the sorry_server: block of a virtual service: a
// destination added only while every real server of the service is down,
// and removed as soon as one is up again.
type SorryServer struct {
	Address string `yaml:"address"`
	// Port 0 (unset) means the service's port.
	Port uint16 `yaml:"port"`
	// Forwarding is dr, nat or tun; unset means the service's.
	Forwarding string `yaml:"forwarding"`

	addr netip.Addr
	fwd  ipvs.Forward
}

// Addr returns the validated address.
func (s *SorryServer) Addr() netip.Addr { return s.addr }

// Forward returns the validated forwarding method and whether it was set.
func (s *SorryServer) Forward() (ipvs.Forward, bool) { return s.fwd, s.Forwarding != "" }

// Validate checks the block written at path and fills Addr and Forward.
func (s *SorryServer) Validate(doc *config.Doc, path string) config.Errors {
	if s == nil {
		return nil
	}
	var errs config.Errors
	a, err := netip.ParseAddr(s.Address)
	switch {
	case s.Address == "":
		errs = append(errs, doc.Errorf(config.Join(path, "address"), "a sorry server needs an address"))
	case err != nil || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast():
		errs = append(errs, doc.Errorf(config.Join(path, "address"), "want an IPv4 or IPv6 address, got %q", s.Address))
	default:
		s.addr = a.Unmap()
	}
	if doc.Has(config.Join(path, "port")) && s.Port == 0 {
		errs = append(errs, doc.Errorf(config.Join(path, "port"), "must be from 1 to 65535 (leave it out for the service's port)"))
	}
	if s.Forwarding != "" {
		f, err := ipvs.ParseForward(s.Forwarding)
		if err != nil {
			errs = append(errs, doc.Errorf(config.Join(path, "forwarding"), "unknown forwarding %q (want dr, nat or tun)", s.Forwarding))
		}
		s.fwd = f
	}
	return errs
}

// Quorum is the quorum: block of a virtual service: while fewer than MinUp
// real servers are up, the director logs it and keeps the servers it last
// had (or uses the sorry server) instead of taking more out.
type Quorum struct {
	MinUp int `yaml:"min_up"`
}

// Validate checks the block written at path against the number of real
// servers the service lists.
func (q *Quorum) Validate(doc *config.Doc, path string, realServers int) config.Errors {
	if q == nil {
		return nil
	}
	p := config.Join(path, "min_up")
	switch {
	case !doc.Has(p):
		return config.Errors{doc.Errorf(p, "quorum needs min_up (the fewest real servers that must be up)")}
	case q.MinUp < 1:
		return config.Errors{doc.Errorf(p, "must be at least 1, got %d", q.MinUp)}
	case q.MinUp > realServers:
		return config.Errors{doc.Errorf(p, "is %d but the service lists only %d real servers: the quorum could never be met", q.MinUp, realServers)}
	}
	return nil
}

// Met reports whether up real servers meet the quorum. A nil quorum is
// met by any number.
func (q *Quorum) Met(up int) bool { return q == nil || up >= q.MinUp }
