package director

import (
	"fmt"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// mixedFamily reports a real server whose address family differs from its
// service's where IPVS cannot forward it. Only tunnels may mix families
// (Linux 3.18 and later): IPVS wraps the client's packet in a new outer
// header of the real server's family (IPv4 in IPv6 for an ip6tnl real
// server, IPv6 in IPv4 for sit). Direct routing and NAT send the client's
// own packet on, whose addresses are of the service's family. The kernel
// also refuses mixed families while its connection-sync daemon runs,
// whose messages carry one family per connection.
func mixedFamily(vs *VirtualService, rs *RealServer) error {
	if !rs.addr.IsValid() || ipvs.FamilyOf(rs.addr) == vs.family || rs.forward == ipvs.Tunnel {
		return nil
	}
	return fmt.Errorf("%s real server %s behind an %s service: only tun real servers may be of the other family (%s forwards the client's %s packet unchanged; tun wraps it in an %s header)",
		famName(ipvs.FamilyOf(rs.addr)), rs.addr, famName(vs.family), rs.forward, famName(vs.family), famName(ipvs.FamilyOf(rs.addr)))
}
