package ipvs

import (
	"encoding/binary"
	"fmt"
)

// Building requests: netlink framing and the IPVS attributes of services
// and real servers.

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

// CheckOp reports an op that cannot be encoded: Apply refuses a batch
// holding one before sending anything.
func CheckOp(op Op) error {
	_, _, _, err := opShape(op)
	return err
}
