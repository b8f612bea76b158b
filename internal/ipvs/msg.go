package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// This file holds the wire format of the IPVS generic-netlink family
// (include/uapi/linux/ip_vs.h): building requests and parsing replies. It
// is pure byte work, so it is unit-tested and fuzzed without a kernel.

// Netlink and generic-netlink framing.
const (
	nlmsgHdrLen = 16
	genlHdrLen  = 4
	nlaHdrLen   = 4
	nlaTypeMask = 0x3fff // strips NLA_F_NESTED and NLA_F_NET_BYTEORDER

	nlmFRequest = 0x1
	nlmFMulti   = 0x2
	nlmFAck     = 0x4
	nlmFDump    = 0x300

	nlmsgNoop  = 0x1
	nlmsgError = 0x2
	nlmsgDone  = 0x3

	genlIDCtrl            = 0x10
	ctrlCmdGetFamily      = 3
	ctrlAttrFamilyID      = 1
	ctrlAttrFamilyName    = 2
	ctrlVersion           = 2
	ipvsGenlName          = "IPVS"
	ipvsGenlVersion       = 1
	schedNameMaxLen       = 16 // IP_VS_SCHEDNAME_MAXLEN, with the NUL
	peNameMaxLen          = 32 // IP_VS_PENAME_MAXLEN, with the NUL
	ipvsFlagsAttrLen      = 8  // struct ip_vs_flags {flags, mask}
	maxAddrLen            = 16 // union nf_inet_addr
	nativeErrnoAckPayload = 4  // the int error of struct nlmsgerr
)

// IPVS commands (enum IPVS_CMD_*).
const (
	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
	cmdGetService = 4
	cmdNewDest    = 5
	cmdSetDest    = 6
	cmdDelDest    = 7
	cmdGetDest    = 8
	cmdSetConfig  = 12
	cmdGetConfig  = 13
	cmdGetInfo    = 15
)

// Top-level attributes (IPVS_CMD_ATTR_*).
const (
	cmdAttrService       = 1
	cmdAttrDest          = 2
	cmdAttrTimeoutTCP    = 4
	cmdAttrTimeoutTCPFin = 5
	cmdAttrTimeoutUDP    = 6
)

// Service attributes (IPVS_SVC_ATTR_*).
const (
	svcAttrAF        = 1
	svcAttrProtocol  = 2
	svcAttrAddr      = 3
	svcAttrPort      = 4
	svcAttrFWMark    = 5
	svcAttrSchedName = 6
	svcAttrFlags     = 7
	svcAttrTimeout   = 8
	svcAttrNetmask   = 9
	svcAttrStats     = 10
	svcAttrPEName    = 11
	svcAttrStats64   = 12
)

// Destination attributes (IPVS_DEST_ATTR_*).
const (
	destAttrAddr         = 1
	destAttrPort         = 2
	destAttrFwdMethod    = 3
	destAttrWeight       = 4
	destAttrUThresh      = 5
	destAttrLThresh      = 6
	destAttrActiveConns  = 7
	destAttrInactConns   = 8
	destAttrPersistConns = 9
	destAttrStats        = 10
	destAttrAF           = 11
	destAttrStats64      = 12
	destAttrTunType      = 13
	destAttrTunPort      = 14
	destAttrTunFlags     = 15
)

// Statistics attributes (IPVS_STATS_ATTR_*), u32 or u64 in IPVS_*_STATS
// and all u64 in IPVS_*_STATS64.
const (
	statsConns    = 1
	statsInPkts   = 2
	statsOutPkts  = 3
	statsInBytes  = 4
	statsOutBytes = 5
	statsCPS      = 6
	statsInPPS    = 7
	statsOutPPS   = 8
	statsInBPS    = 9
	statsOutBPS   = 10
)

// Info attributes (IPVS_INFO_ATTR_*).
const (
	infoAttrVersion     = 1
	infoAttrConnTabSize = 2
)

// fwdMask selects the forwarding method of IP_VS_CONN_F_*.
const fwdMask = 0x7

var errMalformed = errors.New("malformed netlink message")

// encoder appends netlink messages to a buffer. Several messages can be
// appended one after the other and written with one sendmsg.
type encoder struct {
	b []byte
}

// begin starts a generic-netlink message and returns its offset for end.
func (e *encoder) begin(family uint16, flags uint16, seq uint32, cmd, version uint8) int {
	start := len(e.b)
	e.b = binary.NativeEndian.AppendUint32(e.b, 0) // length, set by end
	e.b = binary.NativeEndian.AppendUint16(e.b, family)
	e.b = binary.NativeEndian.AppendUint16(e.b, flags)
	e.b = binary.NativeEndian.AppendUint32(e.b, seq)
	e.b = binary.NativeEndian.AppendUint32(e.b, 0) // port id: the kernel fills it
	e.b = append(e.b, cmd, version, 0, 0)
	return start
}

func (e *encoder) end(start int) {
	binary.NativeEndian.PutUint32(e.b[start:], uint32(len(e.b)-start))
}

func (e *encoder) attr(typ uint16, val []byte) {
	e.b = binary.NativeEndian.AppendUint16(e.b, uint16(nlaHdrLen+len(val)))
	e.b = binary.NativeEndian.AppendUint16(e.b, typ)
	e.b = append(e.b, val...)
	e.pad()
}

func (e *encoder) pad() {
	for len(e.b)%4 != 0 {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) u8(typ uint16, v uint8) { e.attr(typ, []byte{v}) }

func (e *encoder) u16(typ uint16, v uint16) {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	e.attr(typ, b[:])
}

func (e *encoder) be16(typ uint16, v uint16) {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	e.attr(typ, b[:])
}

func (e *encoder) u32(typ uint16, v uint32) {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	e.attr(typ, b[:])
}

func (e *encoder) be32(typ uint16, v uint32) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	e.attr(typ, b[:])
}

func (e *encoder) str(typ uint16, s string) {
	e.b = binary.NativeEndian.AppendUint16(e.b, uint16(nlaHdrLen+len(s)+1))
	e.b = binary.NativeEndian.AppendUint16(e.b, typ)
	e.b = append(e.b, s...)
	e.b = append(e.b, 0)
	e.pad()
}

// nest starts a nested attribute and returns its offset for endNest.
func (e *encoder) nest(typ uint16) int {
	start := len(e.b)
	e.b = binary.NativeEndian.AppendUint16(e.b, 0)
	e.b = binary.NativeEndian.AppendUint16(e.b, typ)
	return start
}

func (e *encoder) endNest(start int) {
	binary.NativeEndian.PutUint16(e.b[start:], uint16(len(e.b)-start))
}

// checkService reports what makes s impossible to encode.
func checkService(s Service, full bool) error {
	if s.Family != afInet && s.Family != afInet6 {
		return fmt.Errorf("service %s: address family %d is neither IPv4 nor IPv6", s.ServiceKey, s.Family)
	}
	if s.FWMark == 0 {
		if !s.Addr.IsValid() {
			return fmt.Errorf("service %s: no address and no firewall mark", s.ServiceKey)
		}
		if FamilyOf(s.Addr) != s.Family || s.Addr.Is4In6() {
			return fmt.Errorf("service %s: address does not match family %d", s.ServiceKey, s.Family)
		}
	}
	if !full {
		return nil
	}
	if len(s.Scheduler)+1 > schedNameMaxLen {
		return fmt.Errorf("service %s: scheduler name %q is longer than %d bytes", s.ServiceKey, s.Scheduler, schedNameMaxLen-1)
	}
	if len(s.PE)+1 > peNameMaxLen {
		return fmt.Errorf("service %s: persistence engine name %q is longer than %d bytes", s.ServiceKey, s.PE, peNameMaxLen-1)
	}
	return nil
}

func checkDest(d Destination) error {
	if !d.Addr.IsValid() || d.Addr.Is4In6() {
		return fmt.Errorf("real server %s: invalid address", d.DestKey)
	}
	return nil
}

// serviceKeyAttrs appends the attributes that name s inside an open
// IPVS_CMD_ATTR_SERVICE nest.
func (e *encoder) serviceKeyAttrs(s Service) {
	e.u16(svcAttrAF, s.Family)
	if s.FWMark != 0 {
		e.u32(svcAttrFWMark, s.FWMark)
		return
	}
	e.u16(svcAttrProtocol, uint16(s.Protocol))
	if s.Addr.Is4() {
		a := s.Addr.As4()
		e.attr(svcAttrAddr, a[:])
	} else {
		a := s.Addr.As16()
		e.attr(svcAttrAddr, a[:])
	}
	e.be16(svcAttrPort, s.Port)
}

// service appends an IPVS_CMD_ATTR_SERVICE nest for s; full adds the
// configuration the kernel requires for new and edited services.
//
// The persistence netmask is __be32 for the kernel: an IPv4 mask (host
// order in Service.Netmask) goes on the wire big-endian, and an IPv6
// prefix length goes as the native integer the kernel compares with 1..128.
func (e *encoder) service(s Service, full bool) {
	n := e.nest(cmdAttrService)
	e.serviceKeyAttrs(s)
	if full {
		e.str(svcAttrSchedName, s.Scheduler)
		if s.PE != "" {
			e.str(svcAttrPEName, s.PE)
		}
		var f [ipvsFlagsAttrLen]byte
		binary.NativeEndian.PutUint32(f[0:], s.Flags&^FlagHashed)
		binary.NativeEndian.PutUint32(f[4:], ^uint32(0))
		e.attr(svcAttrFlags, f[:])
		e.u32(svcAttrTimeout, s.Timeout)
		if s.Family == afInet {
			e.be32(svcAttrNetmask, s.Netmask)
		} else {
			e.u32(svcAttrNetmask, s.Netmask)
		}
	}
	e.endNest(n)
}

// dest appends an IPVS_CMD_ATTR_DEST nest for d; full adds the
// configuration the kernel requires for new and edited real servers.
func (e *encoder) dest(d Destination, full bool) {
	n := e.nest(cmdAttrDest)
	if d.Addr.Is4() {
		a := d.Addr.As4()
		e.attr(destAttrAddr, a[:])
	} else {
		a := d.Addr.As16()
		e.attr(destAttrAddr, a[:])
	}
	e.be16(destAttrPort, d.Port)
	e.u16(destAttrAF, FamilyOf(d.Addr))
	if full {
		e.u32(destAttrFwdMethod, uint32(d.Forward)&fwdMask)
		e.u32(destAttrWeight, uint32(d.Weight))
		e.u32(destAttrUThresh, d.UpperThreshold)
		e.u32(destAttrLThresh, d.LowerThreshold)
		if d.Forward == Tunnel {
			e.u8(destAttrTunType, uint8(d.TunType))
			e.be16(destAttrTunPort, d.TunPort)
			e.u16(destAttrTunFlags, d.TunFlags)
		}
	}
	e.endNest(n)
}

// opShape returns the command of op, whether it carries a full service
// and whether it names a real server, or why it cannot be encoded.
func opShape(op Op) (cmd uint8, fullSvc, withDest bool, err error) {
	switch op.Kind {
	case AddService:
		cmd, fullSvc = cmdNewService, true
	case EditService:
		cmd, fullSvc = cmdSetService, true
	case DelService:
		cmd = cmdDelService
	case AddDest:
		cmd, withDest = cmdNewDest, true
	case EditDest:
		cmd, withDest = cmdSetDest, true
	case DelDest:
		cmd, withDest = cmdDelDest, true
	default:
		return 0, false, false, fmt.Errorf("unknown operation %s", op.Kind)
	}
	if err := checkService(op.Service, fullSvc); err != nil {
		return 0, false, false, err
	}
	if withDest {
		if err := checkDest(op.Dest); err != nil {
			return 0, false, false, err
		}
	}
	return cmd, fullSvc, withDest, nil
}

// op appends the request for op with sequence number seq. It checks the op
// first and appends nothing when it cannot be encoded.
func (e *encoder) op(family uint16, flags uint16, seq uint32, op Op) error {
	cmd, fullSvc, withDest, err := opShape(op)
	if err != nil {
		return err
	}
	start := e.begin(family, flags, seq, cmd, ipvsGenlVersion)
	e.service(op.Service, fullSvc)
	if withDest {
		e.dest(op.Dest, op.Kind != DelDest)
	}
	e.end(start)
	return nil
}

// setFlags replaces the flags of the message that starts at offset start.
func (e *encoder) setFlags(start int, flags uint16) {
	binary.NativeEndian.PutUint16(e.b[start+6:], flags)
}

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
