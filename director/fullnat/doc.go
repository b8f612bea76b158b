// Package fullnat is the kernel side of full-NAT on a stock kernel: the
// director's IPVS forwards the client's packets to a real server by NAT
// (net.ipv4.vs.conntrack=1 keeps them in conntrack), nftables translates
// their source to one of the director's local addresses (tables "ip" and
// "ip6" of lvs-node's own, nat_linux.go), and a tc egress program on the
// interfaces towards the real servers writes the client's address and
// port into a TCP option (TOA) that the real servers hand to the
// application (hooks_linux.go and bpf_linux.go; the program is
// internal/egress).
//
// The director computes a Spec from its configuration; a Manager makes
// the kernel hold it, records what it adds (Record, kept in the
// director's state file) before adding it, and removes exactly that.
package fullnat
