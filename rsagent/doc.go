// Package rsagent prepares a Linux real server behind an IPVS director and
// keeps it prepared: it binds each VIP where its forwarding method needs it,
// suppresses ARP for the VIPs, brings up the ipip tunnel for TUN and routes
// NAT replies back through the director.
//
// # Forwarding methods
//
//   - dr: the VIP as a /32 (/128) on lo with the label lo:lvs, or on a dummy
//     interface (interface: dummy, named by realserver.dummy_interface). The
//     ARP sysctls (arp_ignore, arp_announce) are set on all first, then on
//     lo and on every interface that holds a VIP; the kernel uses the larger
//     of all and the device value, so all alone already takes effect.
//     IPv6 has no ARP: Linux answers a neighbour solicitation only for an
//     address of the interface it arrived on, so a VIP on lo or on a dummy
//     interface is never advertised on the wire. The address is added with
//     IFA_F_NODAD and no sysctl is changed for it.
//   - tun: the VIP sits on the device that unwraps its tunnel (tunnel.go),
//     whose module is loaded when the device is missing: ipip (default,
//     IPVS --tun-type ipip) on tunl0, or sit0 for an IPv6 VIP (IPv6 in
//     IPv4); gue on the same device behind a FOU port (ip fou add port
//     tunnel_port gue, recorded and removed on down); gre on gre0 (keyless
//     GRE); ip6tnl, for an IPv6 real-server address behind an IPv4 or IPv6
//     VIP (IPVS mixes families for tunnels), on lvs-ip6tnl, an ip6tnl device
//     in external mode that lvs-node creates. The fallback devices are
//     brought up; rp_filter is set to 0 on all and on each device that
//     receives IPv4 (the kernel uses the larger of the two), and the ARP
//     settings are applied to those devices as well. A note on the MTU
//     (each tunnel's overhead) is logged when a tunnel is set up.
//   - nat: the VIP lives on the director; the real server gets routes that
//     send replies back through the director's gateway address: the default
//     route, or the prefixes listed in routes. A route to the same prefix
//     that goes elsewhere is replaced and put back on down.
//
// # Reversibility
//
// Before the first change, every original is recorded in the state
// directory: sysctl values through internal/sysctls
// (realserver-sysctls.json), and the links, addresses and routes lvs-node
// added or replaced (realserver.json). Down puts back exactly those values
// and removes only what lvs-node added. Applying the same configuration
// twice changes nothing the second time.
//
// # Daemon, metrics and control socket
//
// Run keeps the configuration applied (see Agent.Run). Its metrics live in
// a registry of their own (NewMetrics), served by Metrics.Handler for GET
// and HEAD. With listen.control set it serves a unix socket of mode 0600,
// removed on exit, that changes no state: "status" reports the VIPs and
// where they are, the sysctls with their recorded originals, what down
// would undo and the repairs so far; "reload" makes the daemon re-read its
// own file, and a file that does not validate or that the host refuses
// changes nothing (RequestStatus, RequestReload).
//
// # Kernel seam
//
// All netlink work goes through the Kernel interface (a snapshot, add,
// delete, change notifications and module loading); sysctls go through
// internal/sysctls with a configurable root. Tests use a fake kernel that
// prints its state as ip(8) and sysctl(8) lines.
package rsagent
