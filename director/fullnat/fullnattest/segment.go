package fullnattest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Segment is a TCP segment read from an Ethernet frame.
type Segment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    byte
	// Options are the bytes between the 20-byte header and the data.
	Options []byte
	Payload []byte

	frame []byte
	tcp   []byte // the TCP header and data
}

// TCP flags.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	ACK = 0x10
)

// ErrNotTCP is returned for frames that hold no TCP segment.
var ErrNotTCP = errors.New("not a TCP segment over IPv4 or IPv6")

// Parse reads the TCP segment of an Ethernet frame (IPv4 with any header
// length, or IPv6 without extension headers). The IP length decides
// where the segment ends; bytes past it (Ethernet padding) are ignored.
func Parse(frame []byte) (Segment, error) {
	s := Segment{frame: frame}
	if len(frame) < 14 {
		return s, ErrNotTCP
	}
	ip := frame[14:]
	var src, dst netip.Addr
	switch binary.BigEndian.Uint16(frame[12:]) {
	case 0x0800:
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 6 {
			return s, ErrNotTCP
		}
		hl := int(ip[0]&15) * 4
		n := int(binary.BigEndian.Uint16(ip[2:]))
		if hl < 20 || n < hl || n > len(ip) {
			return s, fmt.Errorf("IPv4 lengths: header %d, total %d, frame %d", hl, n, len(ip))
		}
		if Fold(Sum(ip[:hl], 0)) != 0 {
			return s, errors.New("IPv4 header checksum is wrong")
		}
		src, _ = netip.AddrFromSlice(ip[12:16])
		dst, _ = netip.AddrFromSlice(ip[16:20])
		s.tcp = ip[hl:n]
	case 0x86dd:
		if len(ip) < 40 || ip[6] != 6 {
			return s, ErrNotTCP
		}
		n := 40 + int(binary.BigEndian.Uint16(ip[4:]))
		if n > len(ip) {
			return s, fmt.Errorf("IPv6 payload length %d, frame %d", n-40, len(ip)-40)
		}
		src, _ = netip.AddrFromSlice(ip[8:24])
		dst, _ = netip.AddrFromSlice(ip[24:40])
		s.tcp = ip[40:n]
	default:
		return s, ErrNotTCP
	}
	t := s.tcp
	if len(t) < 20 {
		return s, errors.New("short TCP header")
	}
	hl := int(t[12]>>4) * 4
	if hl < 20 || hl > len(t) {
		return s, fmt.Errorf("TCP data offset %d past the segment (%d bytes)", hl, len(t))
	}
	s.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(t[0:]))
	s.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(t[2:]))
	s.Seq = binary.BigEndian.Uint32(t[4:])
	s.Ack = binary.BigEndian.Uint32(t[8:])
	s.Flags = t[13]
	s.Options = t[20:hl]
	s.Payload = t[hl:]
	return s, nil
}

// Has reports whether every flag of f is set.
func (s Segment) Has(f byte) bool { return s.Flags&f == f }

func (s Segment) String() string {
	return fmt.Sprintf("%s > %s flags %#02x seq %d ack %d options % x, %d bytes", s.Src, s.Dst, s.Flags, s.Seq, s.Ack, s.Options, len(s.Payload))
}

// CheckChecksum verifies the TCP checksum. With the checksum not computed
// yet (offload pending: notReady), the field must hold the pseudo-header
// sum for the segment's length, which the device then completes.
func (s Segment) CheckChecksum(notReady bool) error {
	ps := PseudoSum(s.Src.Addr(), s.Dst.Addr(), len(s.tcp))
	got := binary.BigEndian.Uint16(s.tcp[16:])
	if notReady {
		// The field holds the folded pseudo-header sum, not inverted.
		// 0 and 0xffff are the same number in one's complement.
		if want := ^Fold(ps); got != want && !(got|want == 0xffff && got&want == 0) {
			return fmt.Errorf("pseudo-header checksum %#04x, want %#04x for %d bytes", got, want, len(s.tcp))
		}
		return nil
	}
	if Fold(Sum(s.tcp, ps)) != 0 {
		return fmt.Errorf("TCP checksum %#04x is wrong", got)
	}
	return nil
}

// Sum is the one's complement sum of b (an odd length padded with zero)
// added to acc: Fold(Sum(header, 0)) is an IPv4 header checksum, and
// Fold(Sum(tcp, PseudoSum(src, dst, len(tcp)))) a TCP checksum (0 when
// the checksum in place is right).
func Sum(b []byte, acc uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	return acc
}

// Fold folds a sum to 16 bits and complements it.
func Fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return ^uint16(acc)
}

// PseudoSum is the sum of the TCP pseudo-header for a segment of n bytes.
func PseudoSum(src, dst netip.Addr, n int) uint32 {
	return Sum(dst.AsSlice(), Sum(src.AsSlice(), 0)) + 6 + uint32(n)
}

// TOA spells the option of the format table for client: kind, length,
// port and address (254/8 and 200/8 for IPv4, 254/20 and 253/20 for
// IPv6), or kind 28 with version 1 and no port, padded with one NOP.
func TOA(kind byte, client netip.AddrPort) []byte {
	a := client.Addr().Unmap()
	p := client.Port()
	if kind == 28 {
		return append(append([]byte{28, byte(3 + a.BitLen()/8), 1}, a.AsSlice()...), 1)
	}
	return append([]byte{kind, byte(4 + a.BitLen()/8), byte(p >> 8), byte(p)}, a.AsSlice()...)
}
