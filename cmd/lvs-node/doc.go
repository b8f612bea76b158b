// Command lvs-node is the single binary of both LVS roles: the director
// that programs IPVS (lvs-node director) and the real-server agent
// (lvs-node realserver), with config checking (lvs-node check), an
// ipvsadm-compatible view (lvs-node ipvs) and importers (lvs-node import).
// main only hands the arguments to package cli.
package main
