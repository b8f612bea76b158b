package parsertc

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/lvs-node/lvs-node/toa/format"
)

// Parser runs the C parser and encoder in the kernel.
type Parser struct {
	objs parserObjects
}

// Load loads the tc build into the kernel.
func Load() (*Parser, error) {
	var p Parser
	if err := loadParserObjects(&p.objs, nil); err != nil {
		return nil, fmt.Errorf("load the tc build of the TOA parser: %w", err)
	}
	return &p, nil
}

// Close unloads the programs.
func (p *Parser) Close() error { return p.objs.Close() }

// Frame wraps a TCP header into an Ethernet and IPv4 (or IPv6) frame.
func Frame(tcp []byte, v6 bool) []byte {
	eth := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00}
	var ip []byte
	if v6 {
		eth[12], eth[13] = 0x86, 0xdd
		ip = make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
		ip[6], ip[7] = 6, 64
		ip[8], ip[23] = 0x20, 1
		ip[24], ip[39] = 0x20, 2
	} else {
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
		ip[8], ip[9] = 64, 6
		copy(ip[12:], []byte{192, 0, 2, 1, 192, 0, 2, 2})
	}
	f := append(eth, ip...)
	return append(f, tcp...)
}

// Parse runs the C parser over frame with the formats enabled and
// returns its result in the terms of package format. ran is false when
// the program did not reach the parser (not IPv4 or IPv6, too short).
func (p *Parser) Parse(frame []byte, enabled format.Set) (res format.Result, hdrlen uint32, ran bool, err error) {
	if err := p.objs.ParseInMap.Put(uint32(0), parserParseIn{Formats: uint32(enabled)}); err != nil {
		return res, 0, false, err
	}
	if _, err := p.objs.ToaParseTc.Run(&ebpf.RunOptions{Data: frame}); err != nil {
		return res, 0, false, err
	}
	var out parserParseOut
	if err := p.objs.ParseOutMap.Lookup(uint32(0), &out); err != nil {
		return res, 0, false, err
	}
	if out.Flags&0x100 == 0 {
		return res, 0, false, nil
	}
	res.Flags = format.Flags(out.Flags &^ 0x100)
	if res.Flags&format.Found != 0 {
		res.Format = format.ID(out.Addr.Format)
		res.HasPort = out.Addr.HasPort != 0
		if res.HasPort {
			// port bytes are in network order in memory
			var b [2]byte
			binary.NativeEndian.PutUint16(b[:], out.Addr.Port)
			res.Port = binary.BigEndian.Uint16(b[:])
		}
		if out.Addr.Family == 4 {
			res.Addr = netip.AddrFrom4([4]byte(out.Addr.Addr[:4]))
		} else {
			res.Addr = netip.AddrFrom16(out.Addr.Addr)
		}
	}
	return res, out.Hdrlen, true, nil
}

// Encode runs the C encoder for format id and ap.
func (p *Parser) Encode(id format.ID, ap netip.AddrPort) ([]byte, error) {
	var io parserEncodeIo
	io.Id = uint32(id)
	a := ap.Addr()
	if a.Is4() {
		io.Addr.Family = 4
		v := a.As4()
		copy(io.Addr.Addr[:], v[:])
	} else {
		io.Addr.Family = 6
		io.Addr.Addr = a.As16()
	}
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], ap.Port())
	io.Addr.Port = binary.NativeEndian.Uint16(b[:])
	if err := p.objs.EncodeMap.Put(uint32(0), io); err != nil {
		return nil, err
	}
	if _, err := p.objs.ToaEncodeTc.Run(&ebpf.RunOptions{Data: make([]byte, 14)}); err != nil {
		return nil, err
	}
	if err := p.objs.EncodeMap.Lookup(uint32(0), &io); err != nil {
		return nil, err
	}
	return append([]byte(nil), io.Opt[:io.Len]...), nil
}
