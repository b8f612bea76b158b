// Package toa reveals the real client address that full-NAT balancers
// (DPVS, Alibaba LVS, cloud load balancers) carry in a TCP option (TOA)
// to unmodified applications on a real server, with eBPF instead of a
// kernel module, and inspects hosts that run the TOA kernel modules.
//
// Attach loads the programs of toa/internal/rsprog, attaches them to a
// cgroup v2 and pins programs, maps and links under a directory of the
// BPF file system (/sys/fs/bpf/lvs-node/toa), so that they outlive the
// process and a later Attach (a restarted agent) replaces the programs in
// place, without a moment where connections go unread. Detach removes it
// all. Status, Stats, Doctor and Verify report on the host: the eBPF path,
// a loaded TOA module (found through /sys/module and /proc/net/toa_stats
// under a root path, so tests use fixture trees), what the kernel lacks,
// and whether addresses are really rewritten (a self-test in a private
// network namespace and cgroup).
//
// The option formats and their Go encoder and decoder are in toa/format;
// the C parser and encoder are in toa/include.
package toa
