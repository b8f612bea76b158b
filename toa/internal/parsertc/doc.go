// Package parsertc is a tc build of the real-server TOA parser and the
// option encoder (parser.c includes the same headers as the real-server
// programs), so that tests run them with Program.Run and compare them
// with the Go reference in toa/format.
package parsertc
