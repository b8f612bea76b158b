// Package fullnattest helps the full-NAT tests read the wire: it parses
// captured frames into TCP segments, checks their checksums (complete,
// or the pseudo-header sum a packet with checksum offload pending
// carries) and spells the TOA options of the format table (toa.md) byte
// by byte, independently of the encoders under test.
package fullnattest
