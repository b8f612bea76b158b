// Package director makes the kernel's IPVS table match a reviewed YAML
// file and keeps it that way without disrupting traffic.
//
// The pieces, each usable on its own:
//
//   - LoadConfig decodes director.yaml strictly, fills defaults and
//     validates it, returning every problem with file:line:column.
//   - Desired turns a Config into the IPVS table it asks for, plus the
//     nftables firewall-mark rules of multi-port services.
//   - Diff compares a desired table with the kernel's as a pure function
//     and returns the minimal, ordered list of operations. It deletes only
//     services lvs-node owns; a service the file names that exists already
//     (same key, made by hand or by another tool) is taken over: edited in
//     place to match, and lvs-node's from the first reconciliation that
//     succeeds. It edits a service whose key is unchanged in place
//     (deleting and re-adding it would drop its connections). Services
//     the file does not name and lvs-node did not create are never touched.
//   - Engine applies a Config through small interfaces (kernel, marker,
//     sysctls), records ownership and firewall-mark allocations in the
//     state directory, and repairs drift on each resync.
//   - Monitor runs the health checks (healthz) and polls the load agents
//     (director/feedback) of the configuration in force and hands their
//     verdicts to the Engine as inputs; the sorry server and the quorum
//     are part of the desired table.
//   - Daemon runs an Engine, its Monitor and its HA controller: periodic
//     resync, reload on SIGHUP or through the control socket (which also
//     answers status, drain, ready and the ha commands), and a read-only
//     Prometheus endpoint.
//   - HA follows the role keepalived's notify hooks report with the
//     kernel's connection-sync daemons, and announces VIPs through BIRD
//     (director/announce) while the director is in sync, not drained and
//     its services have min_up real servers taking connections
//     (AnnounceVIPs). It never changes the IPVS table.
//
// Stopping the daemon leaves the IPVS table, the nftables rules and the
// sysctls in place, so a restart drops no connection; Engine.Down removes
// what lvs-node owns and restores the sysctls it changed.
package director
