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
//   - tun: ipip is loaded (modprobe ipip) when tunl0 is missing, tunl0 is
//     brought up and holds the VIP, rp_filter is set to 0 on tunl0 and on all
//     (the kernel uses the larger of the two), and the ARP settings are
//     applied to tunl0 as well. IPv4 only.
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
