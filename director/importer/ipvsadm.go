package importer

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvsadm"
)

// FromIpvsadm reads ipvsadm-save output, or a shell script that runs
// ipvsadm, named name, and returns an equivalent director.yaml. A script
// is imported as run with "start" (see runShell): commands that do not
// describe the table (--set, --start-daemon, listing), other commands and
// branches not taken are listed as comments at the end. Malformed rules
// and what cannot be known without running the script are errors naming
// name:line:column.
func FromIpvsadm(r io.Reader, name string, opts Options) (*Result, error) {
	rules, notes, err := runShell(r, name, opts.Services)
	if err != nil {
		return nil, fmt.Errorf("import ipvsadm rules: %w", err)
	}
	d := &docOut{header: []string{
		fmt.Sprintf("director.yaml imported from the ipvsadm rules in %s (as run with %q).", name, scriptArg),
		"Review it before use; anything that could not be mapped is listed in comments.",
	}}
	for _, se := range rules.Table().Services {
		v := fromService(se)
		if len(v.real) == 0 && len(se.Dests) > 0 {
			return nil, fmt.Errorf("import ipvsadm rules: %w", &ipvsadm.ParseError{Pos: rules.Where(se),
				Msg: fmt.Sprintf("none of the %d real servers of this service can be imported (only tun real servers may be of the other address family): refusing to write an empty service", len(se.Dests))})
		}
		d.services = append(d.services, v)
	}
	if t, ok := rules.Timeouts(); ok {
		d.timeouts, d.timeoutsFrom = &t, "Connection timeouts, as ipvsadm --set gives them."

	}
	for _, n := range notes {
		d.trailer = append(d.trailer, fmt.Sprintf("line %d: %s (%s)", n.line, n.text, n.reason))
	}
	return d.result(), nil
}
func fwdName(f ipvs.Forward) string {
	switch f {
	case ipvs.Masq:
		return "nat"
	case ipvs.Tunnel:
		return "tun"
	}
	return "dr"
}

func fromService(se ipvs.ServiceEntry) vsOut {
	v := vsOut{
		scheduler: se.Scheduler,
		onePacket: se.Flags&ipvs.FlagOnePacket != 0,
	}
	if se.FWMark != 0 {
		v.fwmark = se.FWMark
		v.family6 = se.Family == ipvs.FamilyOf(netip.IPv6Unspecified())
	} else {
		v.vip, v.protocol, v.port = se.Addr, se.Protocol.String(), se.Port
	}
	six := v.family6 || v.vip.Is6()
	switch se.Scheduler {
	case "sh", "mh":
		if se.Flags&ipvs.FlagSched1 != 0 {
			v.schedFlags = append(v.schedFlags, se.Scheduler+"-fallback")
		}
		if se.Flags&ipvs.FlagSched2 != 0 {
			v.schedFlags = append(v.schedFlags, se.Scheduler+"-port")
		}
	default:
		for i, f := range []uint32{ipvs.FlagSched1, ipvs.FlagSched2, ipvs.FlagSched3} {
			if se.Flags&f != 0 {
				v.comments = append(v.comments, fmt.Sprintf("scheduler flag flag-%d of %s (not mapped: the director knows sh/mh flags only)", i+1, se.Scheduler))
			}
		}
	}
	if se.Flags&ipvs.FlagPersistent != 0 {
		v.persistent, v.timeout = true, se.Timeout
		if six {
			v.netmask = strconv.Itoa(int(se.Netmask))
		} else {
			m := se.Netmask
			v.netmask = fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&0xff, m>>8&0xff, m&0xff)
		}
	}
	if se.PE != "" {
		v.setPE(se.PE, "--pe "+se.PE)
	}
	for _, d := range se.Dests {
		rs := rsOut{
			addr:       d.Addr,
			weight:     int64(d.Weight),
			forwarding: fwdName(d.Forward),
			upper:      d.UpperThreshold,
			lower:      d.LowerThreshold,
		}
		switch {
		case se.FWMark == 0:
			rs.port, rs.hasPort = d.Port, true
		case d.Port != 0 && d.Forward == ipvs.Masq:
			rs.port, rs.hasPort = d.Port, true
		case d.Port != 0:
			rs.comments = append(rs.comments, fmt.Sprintf("port %d dropped: a %s real server of a firewall-mark service keeps the client's port", d.Port, rs.forwarding))
		}
		if d.Forward == ipvs.Tunnel {
			switch d.TunType {
			case ipvs.TunGUE:
				rs.tunType, rs.tunPort = "gue", d.TunPort
			case ipvs.TunGRE:
				rs.tunType = "gre"
			}
			if d.TunFlags != 0 {
				rs.comments = append(rs.comments, fmt.Sprintf("tunnel checksum flags %#x (not mapped yet)", d.TunFlags))
			}
		}
		if ipvs.FamilyOf(d.Addr) != familyOf(v) && d.Forward != ipvs.Tunnel {
			v.comments = append(v.comments, fmt.Sprintf("real server %s (%s, weight %d) not mapped: only tun real servers may be of the other address family",
				netip.AddrPortFrom(d.Addr, d.Port), rs.forwarding, d.Weight))
			continue
		}
		v.real = append(v.real, rs)
	}
	v.forwarding = defaultForward(v.real, "dr")
	return v
}

func familyOf(v vsOut) uint16 {
	if v.family6 || v.vip.Is6() {
		return ipvs.FamilyOf(netip.IPv6Unspecified())
	}
	return ipvs.FamilyOf(netip.IPv4Unspecified())
}
