// Package config loads the YAML files of both lvs-node roles strictly.
//
// Every key must be known to the target struct, every value must have the
// right type, and every problem is reported with file:line:column and the
// key path (for example virtual_services[1].real_servers[0].weight), all at
// once rather than one per run. The role packages (director, rsagent) own
// their schemas and validation; this package owns decoding and positions.
//
// Integers are decimal: "weight: 010" is an error (YAML 1.1 and C would
// read eight, people ten), as are the 0o and 0b prefixes. A field whose
// yaml tag carries the option "hex" (`yaml:"fwmark,hex"`: firewall marks,
// written in hex by convention) also takes 0x followed by hex digits.
package config
