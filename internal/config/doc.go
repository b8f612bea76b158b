// Package config loads the YAML files of both lvs-node roles strictly.
//
// Every key must be known to the target struct, every value must have the
// right type, and every problem is reported with file:line:column and the
// key path (for example virtual_services[1].real_servers[0].weight), all at
// once rather than one per run. The role packages (director, rsagent) own
// their schemas and validation; this package owns decoding and positions.
package config
