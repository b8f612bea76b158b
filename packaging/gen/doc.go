// Command gen writes the manual pages and the shell completion files of
// lvs-node from its command tree, for the packages:
//
//	go run ./packaging/gen -out DIR
//
// DIR/man8 receives one gzip-compressed page per command (cobra's doc
// generator; dated from SOURCE_DATE_EPOCH when set, so builds repeat), and
// DIR/completion the bash, zsh and fish files. It is a separate program
// so that the lvs-node binary carries no documentation generator.
package main
