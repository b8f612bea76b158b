package fullnattest

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// WireReport sums up a capture checked by CheckWire.
type WireReport struct {
	Flows      int // connections seen from a local address
	WithTOA    int // segments that carried the option
	Checked    int // segments whose checksum was checked
	NotReady   int // of which with checksum offload pending
	Complete   int // of which with a complete checksum
	FirstCarry int // flows whose handshake ACK carried the option
	// NoRoom counts segments up to the first data that went without
	// the option because their header had no room for it (for example
	// a duplicate ACK with timestamps and a D-SACK block: 24 bytes of
	// options leave 16, and the IPv6 form needs 20). The writer counts
	// them as skipped for lack of room.
	NoRoom int
}

func (r WireReport) String() string {
	return fmt.Sprintf("%d flows, %d segments with TOA (%d handshake ACKs), %d without room for it, %d checksums checked (%d complete, %d offload pending)",
		r.Flows, r.WithTOA, r.FirstCarry, r.NoRoom, r.Checked, r.Complete, r.NotReady)
}

// CheckWire checks the segments a capture on a real server's interface
// received from the director's local addresses: every checksum, and for
// each connection in clients (local address and port -> the client
// behind it) that the option of kind (TOA) sits right after the TCP
// header, byte for byte, in the handshake-completing ACK and in every
// segment up to the first data, and in no other (not in the SYN, not
// after the first data), unless the header has no room left for it
// (counted in NoRoom). Connections the capture saw but clients does not
// name are an error.
func CheckWire(pkts []topo.Packet, clients map[netip.AddrPort]netip.AddrPort, kind byte) (WireReport, error) {
	var rep WireReport
	var errs []error
	type flow struct {
		isn    uint32
		syn    bool
		done   bool // past the first data
		acked  bool // the handshake ACK was seen
		client netip.AddrPort
	}
	flows := map[netip.AddrPort]*flow{}
	laddrs := map[netip.Addr]bool{}
	for l := range clients {
		laddrs[l.Addr()] = true
	}
	for _, p := range pkts {
		if p.Outgoing {
			continue
		}
		s, err := Parse(p.Data)
		if errors.Is(err, ErrNotTCP) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !laddrs[s.Src.Addr()] {
			continue
		}
		rep.Checked++
		if p.CsumNotReady {
			rep.NotReady++
		} else {
			rep.Complete++
		}
		if err := s.CheckChecksum(p.CsumNotReady); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
		}
		f := flows[s.Src]
		if s.Has(SYN) {
			c, ok := clients[s.Src]
			if !ok {
				errs = append(errs, fmt.Errorf("a connection from %s that no client made", s.Src))
				c = netip.AddrPort{}
			}
			f = &flow{isn: s.Seq, syn: true, client: c}
			flows[s.Src] = f
			if hasTOA(s.Options, kind) && kind != 28 {
				errs = append(errs, fmt.Errorf("SYN %s carries the option", s))
			}
			if kind == 28 {
				if !bytes.HasPrefix(s.Options, TOA(kind, c)) {
					errs = append(errs, fmt.Errorf("SYN %s: want options starting % x", s, TOA(kind, c)))
				} else {
					rep.WithTOA++
				}
			}
			continue
		}
		if f == nil || !f.syn {
			continue // a connection from before the capture
		}
		want := TOA(kind, f.client)
		first := s.Seq == f.isn+1 && !f.done
		switch {
		case kind == 28:
			if hasTOA(s.Options, kind) {
				errs = append(errs, fmt.Errorf("%s carries the SYN-only option", s))
			}
		case first && !hasTOA(s.Options, kind) && len(s.Options)+padded(len(want)) > maxOptions:
			rep.NoRoom++
		case first:
			if !bytes.HasPrefix(s.Options, want) {
				errs = append(errs, fmt.Errorf("%s: want options starting % x (the client %s)", s, want, f.client))
			} else {
				rep.WithTOA++
				if !f.acked && len(s.Payload) == 0 {
					rep.FirstCarry++
				}
			}
		default:
			if hasTOA(s.Options, kind) {
				errs = append(errs, fmt.Errorf("%s after the first data carries the option", s))
			}
		}
		if len(s.Payload) == 0 && !s.Has(FIN) {
			f.acked = true
		} else if s.Seq != f.isn+1 {
			f.done = true
		}
	}
	rep.Flows = len(flows)
	for l := range clients {
		if _, ok := flows[l]; !ok {
			errs = append(errs, fmt.Errorf("no SYN from %s (client %s) in the capture", l, clients[l]))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return cmpStr(a.Error(), b.Error()) })
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("and %d more problems", len(errs)-10))
	}
	return rep, errors.Join(errs...)
}

// maxOptions is the most option bytes a TCP header holds.
const maxOptions = 40

// padded is n rounded up to a multiple of four, as the writer pads.
func padded(n int) int { return (n + 3) &^ 3 }

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// hasTOA reports whether opts holds an option of kind (walking the
// option list as TCP does).
func hasTOA(opts []byte, kind byte) bool {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0:
			return false
		case 1:
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 {
			return false
		}
		if opts[i] == kind {
			return true
		}
		i += int(opts[i+1])
	}
	return false
}
