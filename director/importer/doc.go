// Package importer translates the configurations operators already run
// into an equivalent director.yaml: FromIpvsadm reads ipvsadm-save output
// or shell scripts of ipvsadm commands, FromKeepalived reads the
// virtual_server part of keepalived.conf.
//
// The output is a reviewed starting point, not a silent conversion:
// everything the director cannot express yet (health checks, sorry
// servers, VRRP, sync daemons, tunnel checksum options, ...) is kept as a
// YAML comment next to the service or real server it belongs to, or at
// the end of the file, with the line it came from.
//
// Services without a name get one built from protocol, address and port
// ("tcp-10.0.0.1-80", "udp-2001-db8--1-53", "fwm-10"); duplicates get a
// numeric suffix. Values the director would default differently from
// the source (persistence timeout, forwarding, scheduler) are always
// written out.
package importer
