// Package announce tells the routers which VIPs this director carries, by
// way of the BIRD routing daemon that runs beside it: it writes a BIRD
// include file with one static protocol per address family holding the
// VIPs to announce, and asks BIRD to re-read its configuration (birdc
// configure). BIRD's BGP (and BFD) do the rest; lvs-node speaks no
// routing protocol itself.
//
// Which VIPs to announce is decided in the director package (health,
// drain, HA role, sync with the kernel); this package only carries the
// decision to BIRD and reports whether BIRD answers.
package announce
