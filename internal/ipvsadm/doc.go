// Package ipvsadm speaks the text formats of ipvsadm, the classic IPVS
// administration tool, so that operators can compare lvs-node with the
// tools they know and move their rules over:
//
//   - WriteList prints an ipvs.Table exactly as "ipvsadm -Ln" does (and, with
//     ListOptions.Format, the --stats, --rate, --thresholds,
//     --persistent-conn and --tun-info layouts; ListOptions.Exact is
//     --exact). Services and real servers are ordered the way ipvsadm orders
//     them, quirks included.
//   - WriteJSON prints the same table as JSON with stable field names (see
//     JSONTable).
//   - WriteSave prints the table in the "ipvsadm-save -n" (ipvsadm -Sn)
//     format that "ipvsadm -R" reads back.
//   - ParseSave and ParseScript read that format back, and also simple
//     scripts made of "ipvsadm -A/-a/-E/-e/-D/-d/-C" lines with short or
//     long options; Rules applies ipvsadm commands given as words (what
//     the importer's shell reader hands it). Port names are looked up in
//     /etc/services per protocol, as ipvsadm's getservbyname does.
//     Errors name file:line:column of the word at fault.
//
// Files: lexer.go (positions, words), options.go (ipvsadm's options and
// their checks), rules.go (applying commands to a table), services.go
// (port names).
//
// The formats follow ipvsadm 1.31 (ipvsadm.c: print_title,
// print_service_entry, print_largenum, print_tunnel_rule and parse_options).
package ipvsadm
