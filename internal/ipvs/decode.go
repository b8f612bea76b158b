package ipvs

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Parsing replies: netlink messages, their attributes, and the services,
// real servers and counters they carry.

// nlMsg is one netlink message of a datagram.
type nlMsg struct {
	Type    uint16
	Flags   uint16
	Seq     uint32
	Pid     uint32
	Payload []byte
}

// parseMessages splits a datagram into its netlink messages.
func parseMessages(b []byte, fn func(nlMsg) error) error {
	msgLen := func(b []byte) int { return int(binary.NativeEndian.Uint32(b)) }
	return walkRecords(b, nlmsgHdrLen, msgLen, "message", func(rec []byte) error {
		return fn(nlMsg{
			Type:    binary.NativeEndian.Uint16(rec[4:]),
			Flags:   binary.NativeEndian.Uint16(rec[6:]),
			Seq:     binary.NativeEndian.Uint32(rec[8:]),
			Pid:     binary.NativeEndian.Uint32(rec[12:]),
			Payload: rec[nlmsgHdrLen:],
		})
	})
}

// walkRecords calls fn for each record of b: netlink messages and
// attributes alike start with a header of hdrLen bytes holding the
// record's length (read by lenOf) and are padded to 4 bytes.
func walkRecords(b []byte, hdrLen int, lenOf func([]byte) int, what string, fn func(rec []byte) error) error {
	for len(b) >= hdrLen {
		l := lenOf(b)
		if l < hdrLen || l > len(b) {
			return fmt.Errorf("%w: %s length %d of %d bytes", errMalformed, what, l, len(b))
		}
		if err := fn(b[:l]); err != nil {
			return err
		}
		b = b[min(align4(l), len(b)):]
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing %s bytes", errMalformed, len(b), what)
	}
	return nil
}

// errnoOf returns the error code of an NLMSG_ERROR or NLMSG_DONE payload
// as a positive errno (0 for an acknowledgement).
func errnoOf(payload []byte) (int32, error) {
	if len(payload) < nativeErrnoAckPayload {
		return 0, fmt.Errorf("%w: short error message", errMalformed)
	}
	return -int32(binary.NativeEndian.Uint32(payload)), nil
}

// ackSeq returns the sequence number of the request an NLMSG_ERROR
// answers (from the embedded request header).
func ackSeq(payload []byte) (uint32, error) {
	if len(payload) < nativeErrnoAckPayload+nlmsgHdrLen {
		return 0, fmt.Errorf("%w: short acknowledgement", errMalformed)
	}
	return binary.NativeEndian.Uint32(payload[nativeErrnoAckPayload+8:]), nil
}

func align4(n int) int { return (n + 3) &^ 3 }

// forEachAttr calls fn for every attribute of b with the type flags
// stripped.
func forEachAttr(b []byte, fn func(typ uint16, val []byte) error) error {
	attrLen := func(b []byte) int { return int(binary.NativeEndian.Uint16(b)) }
	return walkRecords(b, nlaHdrLen, attrLen, "attribute", func(rec []byte) error {
		return fn(binary.NativeEndian.Uint16(rec[2:])&nlaTypeMask, rec[nlaHdrLen:])
	})
}

func getU8(v []byte) (uint8, error) {
	if len(v) < 1 {
		return 0, fmt.Errorf("%w: u8 attribute of %d bytes", errMalformed, len(v))
	}
	return v[0], nil
}

func getU16(v []byte) (uint16, error) {
	if len(v) < 2 {
		return 0, fmt.Errorf("%w: u16 attribute of %d bytes", errMalformed, len(v))
	}
	return binary.NativeEndian.Uint16(v), nil
}

func getBE16(v []byte) (uint16, error) {
	if len(v) < 2 {
		return 0, fmt.Errorf("%w: be16 attribute of %d bytes", errMalformed, len(v))
	}
	return binary.BigEndian.Uint16(v), nil
}

func getU32(v []byte) (uint32, error) {
	if len(v) < 4 {
		return 0, fmt.Errorf("%w: u32 attribute of %d bytes", errMalformed, len(v))
	}
	return binary.NativeEndian.Uint32(v), nil
}

// getUint reads a u32 or u64 attribute (the old stats mix both).
func getUint(v []byte) (uint64, error) {
	switch {
	case len(v) >= 8:
		return binary.NativeEndian.Uint64(v), nil
	case len(v) >= 4:
		return uint64(binary.NativeEndian.Uint32(v)), nil
	}
	return 0, fmt.Errorf("%w: integer attribute of %d bytes", errMalformed, len(v))
}

func getString(v []byte) string {
	for i, c := range v {
		if c == 0 {
			return string(v[:i])
		}
	}
	return string(v)
}

func getAddr(v []byte, family uint16) (netip.Addr, error) {
	switch {
	case family == afInet && len(v) >= 4:
		return netip.AddrFrom4([4]byte(v[:4])), nil
	case family == afInet6 && len(v) >= 16:
		return netip.AddrFrom16([16]byte(v[:16])), nil
	}
	return netip.Addr{}, fmt.Errorf("%w: address of %d bytes for family %d", errMalformed, len(v), family)
}

func parseStats(b []byte) (Stats, error) {
	var s Stats
	err := forEachAttr(b, func(typ uint16, v []byte) error {
		var p *uint64
		switch typ {
		case statsConns:
			p = &s.Conns
		case statsInPkts:
			p = &s.InPkts
		case statsOutPkts:
			p = &s.OutPkts
		case statsInBytes:
			p = &s.InBytes
		case statsOutBytes:
			p = &s.OutBytes
		case statsCPS:
			p = &s.CPS
		case statsInPPS:
			p = &s.InPPS
		case statsOutPPS:
			p = &s.OutPPS
		case statsInBPS:
			p = &s.InBPS
		case statsOutBPS:
			p = &s.OutBPS
		default:
			return nil
		}
		x, err := getUint(v)
		*p = x
		return err
	})
	return s, err
}

// parseService decodes the payload of an IPVS_CMD_ATTR_SERVICE nest. The
// 64-bit statistics win over the 32-bit ones when both are present.
func parseService(b []byte) (ServiceEntry, error) {
	var (
		e                ServiceEntry
		addr             []byte
		stats, stats64   []byte
		netmask          []byte
		hasAF, hasStat64 bool
	)
	err := forEachAttr(b, func(typ uint16, v []byte) error {
		var err error
		switch typ {
		case svcAttrAF:
			e.Family, err = getU16(v)
			hasAF = true
		case svcAttrProtocol:
			var p uint16
			p, err = getU16(v)
			e.Protocol = Protocol(p)
		case svcAttrAddr:
			addr = v
		case svcAttrPort:
			e.Port, err = getBE16(v)
		case svcAttrFWMark:
			e.FWMark, err = getU32(v)
		case svcAttrSchedName:
			e.Scheduler = getString(v)
		case svcAttrFlags:
			e.Flags, err = getU32(v)
		case svcAttrTimeout:
			e.Timeout, err = getU32(v)
		case svcAttrNetmask:
			netmask = v
		case svcAttrStats:
			stats = v
		case svcAttrStats64:
			stats64, hasStat64 = v, true
		case svcAttrPEName:
			e.PE = getString(v)
		}
		return err
	})
	if err != nil {
		return e, err
	}
	if !hasAF {
		return e, fmt.Errorf("%w: service without address family", errMalformed)
	}
	if netmask != nil {
		if len(netmask) < 4 {
			return e, fmt.Errorf("%w: netmask of %d bytes", errMalformed, len(netmask))
		}
		if e.Family == afInet {
			e.Netmask = binary.BigEndian.Uint32(netmask)
		} else {
			e.Netmask = binary.NativeEndian.Uint32(netmask)
		}
	}
	if e.FWMark != 0 {
		// The kernel reports only the mark of a firewall-mark service.
		e.Protocol, e.Port, e.Addr = 0, 0, netip.Addr{}
	} else if addr != nil {
		if e.Addr, err = getAddr(addr, e.Family); err != nil {
			return e, err
		}
	}
	if hasStat64 {
		e.Stats, err = parseStats(stats64)
	} else if stats != nil {
		e.Stats, err = parseStats(stats)
	}
	return e, err
}

// parseDest decodes the payload of an IPVS_CMD_ATTR_DEST nest; family is
// the service's, used when the kernel does not name the real server's own.
func parseDest(b []byte, family uint16) (DestEntry, error) {
	var (
		d                DestEntry
		addr             []byte
		stats, stats64   []byte
		hasStat64, hasAF bool
		af               uint16
	)
	err := forEachAttr(b, func(typ uint16, v []byte) error {
		var err error
		var x uint32
		switch typ {
		case destAttrAddr:
			addr = v
		case destAttrPort:
			d.Port, err = getBE16(v)
		case destAttrFwdMethod:
			x, err = getU32(v)
			d.Forward = Forward(x & fwdMask)
		case destAttrWeight:
			x, err = getU32(v)
			d.Weight = int32(x)
		case destAttrUThresh:
			d.UpperThreshold, err = getU32(v)
		case destAttrLThresh:
			d.LowerThreshold, err = getU32(v)
		case destAttrActiveConns:
			d.ActiveConns, err = getU32(v)
		case destAttrInactConns:
			d.InactConns, err = getU32(v)
		case destAttrPersistConns:
			d.PersistConns, err = getU32(v)
		case destAttrStats:
			stats = v
		case destAttrStats64:
			stats64, hasStat64 = v, true
		case destAttrAF:
			af, err = getU16(v)
			hasAF = true
		case destAttrTunType:
			var t uint8
			t, err = getU8(v)
			d.TunType = TunnelType(t)
		case destAttrTunPort:
			d.TunPort, err = getBE16(v)
		case destAttrTunFlags:
			d.TunFlags, err = getU16(v)
		}
		return err
	})
	if err != nil {
		return d, err
	}
	if !hasAF {
		af = family
	}
	if addr == nil {
		return d, fmt.Errorf("%w: real server without address", errMalformed)
	}
	if d.Addr, err = getAddr(addr, af); err != nil {
		return d, err
	}
	if d.Forward != Tunnel {
		// Only tunnels carry a meaningful encapsulation.
		d.TunType, d.TunPort, d.TunFlags = 0, 0, 0
	}
	if hasStat64 {
		d.Stats, err = parseStats(stats64)
	} else if stats != nil {
		d.Stats, err = parseStats(stats)
	}
	return d, err
}

// parseGenl checks the generic-netlink header of a payload and returns the
// attributes after it.
func parseGenl(payload []byte) ([]byte, error) {
	if len(payload) < genlHdrLen {
		return nil, fmt.Errorf("%w: short generic netlink header", errMalformed)
	}
	return payload[genlHdrLen:], nil
}

// nestedAttr returns the attribute typ of a generic netlink message.
func nestedAttr(payload []byte, typ uint16, what string) ([]byte, error) {
	attrs, err := parseGenl(payload)
	if err != nil {
		return nil, err
	}
	var nest []byte
	if err := forEachAttr(attrs, func(t uint16, v []byte) error {
		if t == typ {
			nest = v
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if nest == nil {
		return nil, fmt.Errorf("%w: no %s attribute", errMalformed, what)
	}
	return nest, nil
}

// parseServiceMsg decodes one message of a service dump.
func parseServiceMsg(payload []byte) (ServiceEntry, error) {
	nest, err := nestedAttr(payload, cmdAttrService, "service")
	if err != nil {
		return ServiceEntry{}, err
	}
	return parseService(nest)
}

// parseDestMsg decodes one message of a real-server dump.
func parseDestMsg(payload []byte, family uint16) (DestEntry, error) {
	nest, err := nestedAttr(payload, cmdAttrDest, "real-server")
	if err != nil {
		return DestEntry{}, err
	}
	return parseDest(nest, family)
}
