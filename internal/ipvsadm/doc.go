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
//   - ParseSave and ParseScript read that format back, and also shell
//     scripts made of "ipvsadm -A/-a/-E/-e/-D/-d/-C" lines with short or
//     long options; errors name file:line:column.
//
// The formats follow ipvsadm 1.31 (ipvsadm.c: print_title,
// print_service_entry, print_largenum, print_tunnel_rule and parse_options).
package ipvsadm
