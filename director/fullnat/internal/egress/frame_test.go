package egress

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/lvs-node/lvs-node/director/fullnat/fullnattest"
)

// seg is a TCP segment to wrap into an Ethernet frame, with valid IP and
// TCP checksums computed here (independently of the program).
type seg struct {
	src, dst     netip.Addr
	sport, dport uint16
	seq, ack     uint32
	flags        byte
	opts         []byte // a multiple of four bytes
	payload      []byte
}

// TCP flags.
const (
	fFIN = 0x01
	fSYN = 0x02
	fRST = 0x04
	fPSH = 0x08
	fACK = 0x10
)

func (s seg) tcp() []byte {
	if len(s.opts)%4 != 0 {
		panic("options not padded")
	}
	h := make([]byte, 20, 20+len(s.opts)+len(s.payload))
	binary.BigEndian.PutUint16(h[0:], s.sport)
	binary.BigEndian.PutUint16(h[2:], s.dport)
	binary.BigEndian.PutUint32(h[4:], s.seq)
	binary.BigEndian.PutUint32(h[8:], s.ack)
	h[12] = byte((20+len(s.opts))/4) << 4
	h[13] = s.flags
	binary.BigEndian.PutUint16(h[14:], 64240)
	h = append(h, s.opts...)
	h = append(h, s.payload...)
	binary.BigEndian.PutUint16(h[16:], fullnattest.Fold(fullnattest.Sum(h, fullnattest.PseudoSum(s.src, s.dst, len(h)))))
	return h
}

func (s seg) frame() []byte {
	tcp := s.tcp()
	eth := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00}
	var ip []byte
	if s.src.Is6() {
		eth[12], eth[13] = 0x86, 0xdd
		ip = make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
		ip[6], ip[7] = 6, 64
		copy(ip[8:], s.src.AsSlice())
		copy(ip[24:], s.dst.AsSlice())
	} else {
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
		binary.BigEndian.PutUint16(ip[4:], 0x1234)
		ip[6] = 0x40 // DF
		ip[8], ip[9] = 64, 6
		copy(ip[12:], s.src.AsSlice())
		copy(ip[16:], s.dst.AsSlice())
		binary.BigEndian.PutUint16(ip[10:], fullnattest.Fold(fullnattest.Sum(ip, 0)))
	}
	return append(append(eth, ip...), tcp...)
}

// checkFrame verifies the IPv4 header checksum and the TCP checksum of
// an Ethernet frame, and that the IP length covers the frame exactly.
func checkFrame(f []byte) error {
	var tcp []byte
	var src, dst netip.Addr
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		ip := f[14:]
		hl := int(ip[0]&15) * 4
		if fullnattest.Fold(fullnattest.Sum(ip[:hl], 0)) != 0 {
			return fmt.Errorf("IPv4 header checksum is wrong")
		}
		if n := int(binary.BigEndian.Uint16(ip[2:])); n != len(ip) {
			return fmt.Errorf("IPv4 total length %d, frame carries %d", n, len(ip))
		}
		src, _ = netip.AddrFromSlice(ip[12:16])
		dst, _ = netip.AddrFromSlice(ip[16:20])
		tcp = ip[hl:]
	case 0x86dd:
		ip := f[14:]
		if n := int(binary.BigEndian.Uint16(ip[4:])); n != len(ip)-40 {
			return fmt.Errorf("IPv6 payload length %d, frame carries %d", n, len(ip)-40)
		}
		src, _ = netip.AddrFromSlice(ip[8:24])
		dst, _ = netip.AddrFromSlice(ip[24:40])
		tcp = ip[40:]
	default:
		return fmt.Errorf("not IP")
	}
	if fullnattest.Fold(fullnattest.Sum(tcp, fullnattest.PseudoSum(src, dst, len(tcp)))) != 0 {
		return fmt.Errorf("TCP checksum is wrong")
	}
	return nil
}
