// Package cli builds the lvs-node command line (cobra). Each subcommand
// lives in its own file and only parses flags and calls into the role
// packages, where the defaults and the behaviour live.
package cli
