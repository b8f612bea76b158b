// Package importer translates the configurations operators already run
// into an equivalent director.yaml: FromIpvsadm reads ipvsadm-save output
// or shell scripts that run ipvsadm, FromKeepalived reads the virtual
// servers of keepalived.conf. Both return a Result: the YAML and the
// counts of the summary line.
//
// The goal is the table the original programs, not the one it seems to
// describe:
//
//   - keepalived.conf is read as keepalived 2.2 reads it (kalex.go:
//     comments, quotes, include, $MACRO definitions, @ID / @^ID lines;
//     kamap.go: case-sensitive keywords, what keepalived ignores or
//     fixes up in validate_check_config; kacheck.go: checkers to
//     health_check). Every difference from what the file seems to say is
//     a comment.
//   - a script is read as run with "start" (shell.go) without running
//     anything: assignments, functions, case, if, for and && / || are
//     followed statically; sudo, env and command variables lead to
//     ipvsadm; branches not taken and other commands are comments; what
//     only the director can tell (command output, its files, the
//     environment) is an error where it would change the table.
//
// Connection timeouts (ipvsadm --set, keepalived's lvs_timeouts in
// global_defs; timeouts.go) become director.timeouts; 0 leaves a timeout
// as the kernel has it, as in both.
//
// What the director cannot express (VRRP, sync daemons, tunnel checksum
// options, ...) is kept as a YAML comment next to the service or real
// server it belongs to, or at the end of the file, with the line it came
// from. Errors name file:line:column of the word at fault.
//
// Services without a name get one built from protocol, address and port
// ("tcp-10.0.0.1-80", "udp-2001-db8--1-53", "fwm-10"); duplicates get a
// numeric suffix. Values the director would default differently from
// the source (persistence timeout, forwarding, scheduler) are always
// written out.
//
// testdata/SAMPLES lists the samples written in the style of real files,
// each with FILE.want, the table (ipvsadm -Sn) the original programs.
package importer
