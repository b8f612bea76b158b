package ipvsadm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// ErrNoService is returned (as ipvsadm says "No such service") when the service a command names is
// not in the table.
var ErrNoService = errors.New("no such service")

// ServiceKeyOf reads the service a command names the way ipvsadm's -t,
// -u, --sctp-service and -f do: proto is "tcp", "udp", "sctp" or "fwmark",
// val the address[:port] or the mark, and ipv6 is -6 (for a mark). Port
// names are looked up in services (nil: /etc/services).
func ServiceKeyOf(proto, val string, ipv6 bool, services Services) (ipvs.ServiceKey, error) {
	if proto == "fwmark" {
		m, err := strconv.ParseUint(val, 10, 32)
		if err != nil || m == 0 {
			return ipvs.ServiceKey{}, fmt.Errorf("invalid fwmark value %q (want an integer from 1 to 4294967295)", val)
		}
		k := ipvs.ServiceKey{Family: 2, FWMark: uint32(m)}
		if ipv6 {
			k.Family = afInet6
		}
		return k, nil
	}
	if ipv6 {
		return ipvs.ServiceKey{}, errors.New("-6 applies to firewall-mark services only")
	}
	p, err := ipvs.ParseProtocol(proto)
	if err != nil {
		return ipvs.ServiceKey{}, err
	}
	a, port, _, err := NewRules(services).parseAddrPort(val, p)
	if err != nil {
		return ipvs.ServiceKey{}, fmt.Errorf("illegal virtual server address[:port] %q: %w", val, err)
	}
	return ipvs.ServiceKey{Family: ipvs.FamilyOf(a), Protocol: p, Addr: a, Port: port}, nil
}

// WriteService prints the one service k of t as "ipvsadm -Ln -t|-u|-f
// SERVICE" does: the column titles and the service, without the version
// line. It returns ErrNoService when t does not hold k.
func WriteService(w io.Writer, t *ipvs.Table, k ipvs.ServiceKey, opts ListOptions) error {
	want := ipvs.NormKey(k)
	for _, se := range t.Services {
		if ipvs.NormKey(se.ServiceKey) != want {
			continue
		}
		bw := bufio.NewWriter(w)
		writeTitle(bw, opts.Format)
		writeService(bw, se, opts)
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write listing: %w", err)
		}
		return nil
	}
	return ErrNoService
}
