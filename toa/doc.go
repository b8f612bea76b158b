// Package toa will reveal the real client address that full-NAT balancers
// carry in a TCP option (TOA) to unmodified applications, with eBPF
// (sock_ops to parse the option, cgroup getpeername hooks to hand it out),
// and will inspect hosts that run the TOA kernel modules. The formats and
// kernel facts it builds on are in the team's notes; nothing is built yet.
package toa
