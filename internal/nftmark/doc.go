// Package nftmark keeps the nftables rules that give packets for a VIP and
// a set of ports the firewall mark of an IPVS firewall-mark service.
//
// The rules live in one nftables table of family inet that lvs-node owns
// (by default "lvs-node"), with a chain at the prerouting hook for packets
// that arrive and a chain at the output hook for locally generated ones,
// both at the mangle priority. Set replaces the whole content of that table
// in a single nftables transaction, so the rules change atomically and no
// other table is ever touched. The package talks netlink through
// github.com/google/nftables and needs no nft or iptables binary.
package nftmark
