// Package state keeps small JSON records in the state directory
// (/var/lib/lvs-node by default) so that nothing is lost on restart: the
// original sysctl values, the addresses lvs-node added, and the IPVS
// objects the director owns. Writes are atomic (temporary file, fsync,
// rename, fsync of the directory). TryLock gives one process at a time a
// role's records: a second daemon, --once, up or down on the same
// directory is refused with an error naming the holder.
package state
