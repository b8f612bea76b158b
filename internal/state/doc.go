// Package state keeps small JSON records in the state directory
// (/var/lib/lvs-node by default) so that nothing is lost on restart: the
// original sysctl values, the addresses lvs-node added, and the IPVS
// objects the director owns. Writes are atomic (temporary file, fsync,
// rename, fsync of the directory).
package state
