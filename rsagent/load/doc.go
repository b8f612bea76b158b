// Package load measures how much more work a real server can take: its
// capacity, from 0 % (none) to 100 % (all of it). Each Source gives one
// reading; a Sampler reads every source on an interval and combines them.
//
// # Sources
//
//   - cpu: 100 - CPU utilisation since the previous reading (/proc/stat;
//     idle and iowait count as free);
//   - loadavg: 100 * (1 - load1 / (max_per_core * CPUs)) (/proc/loadavg,
//     CPUs counted in /proc/stat);
//   - psi: 100 * (1 - avg10 / max), avg10 of the "some" line of
//     /proc/pressure/<resource> (cpu, memory or io);
//   - connections: 100 * (1 - n / max), n the established TCP connections
//     whose local port is one of ports, IPv4 and IPv6, counted through
//     sock_diag (netlink inet_diag);
//   - command: a program's output; file: a file's content; http: the body
//     of a 2xx answer to GET. Their content is a number from 0 to 100
//     (optionally followed by %), or an agent-check reply whose N% is the
//     capacity (above 100 % counts as 100 %) and whose health (down, fail,
//     stopped) and admin (drain, maint) words are passed on.
//
// Every /proc read goes through one root (node_exporter style), so tests
// point it at fixture trees. Values outside 0-100 are clamped.
//
// # Combining
//
// A source that fails or does not answer within its timeout is skipped
// for that round and counted; it is never read as 0 %. The sources that
// answered are combined by min (the default: the scarcest resource
// decides) or average. For example, with cpu 80 %, psi memory 40 % and a
// command that timed out: min gives 40 %, average 60 %. When no source
// answers, the capacity is unknown (the agent then reports 100 %, the
// configured weight). The health and admin words of sources combine as
// the worst one: any failed health wins, maint over drain over ready.
package load
