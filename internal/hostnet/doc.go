// Package hostnet holds what both roles change on a host's network stack:
// links, addresses and routes as ip(8) shows them (Object, Snapshot), the
// rtnetlink implementation that reads and changes them (NetlinkKernel),
// and the Ledger that records every addition before it is made, so that
// lvs-node removes only what it added. The real-server agent binds VIPs,
// tunnels and routes through it, the director its VIPs.
package hostnet
