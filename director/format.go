package director

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// FormatOp renders op as the ipvsadm arguments that would make the same
// change, for example "-A -t 10.0.0.1:80 -s wlc" or
// "-a -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 100".
func FormatOp(op ipvs.Op) string {
	var b strings.Builder
	switch op.Kind {
	case ipvs.AddService, ipvs.EditService:
		if op.Kind == ipvs.AddService {
			b.WriteString("-A ")
		} else {
			b.WriteString("-E ")
		}
		writeServiceOpts(&b, op.Service)
	case ipvs.DelService:
		b.WriteString("-D ")
		writeServiceID(&b, op.Service.ServiceKey)
	case ipvs.AddDest, ipvs.EditDest:
		if op.Kind == ipvs.AddDest {
			b.WriteString("-a ")
		} else {
			b.WriteString("-e ")
		}
		writeDest(&b, op.Service.ServiceKey, op.Dest)
	case ipvs.DelDest:
		b.WriteString("-d ")
		writeServiceID(&b, op.Service.ServiceKey)
		b.WriteString(" -r ")
		b.WriteString(destAddr(op.Dest.DestKey))
	default:
		fmt.Fprintf(&b, "# unknown operation %s", op.Kind)
	}
	return b.String()
}

// FormatTable renders t as ipvsadm-save -n lines in the table's order.
func FormatTable(t *ipvs.Table) string {
	var b strings.Builder
	for _, s := range t.Services {
		b.WriteString("-A ")
		writeServiceOpts(&b, s.Service)
		b.WriteByte('\n')
		for _, d := range s.Dests {
			b.WriteString("-a ")
			writeDest(&b, s.ServiceKey, d.Destination)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func writeServiceID(b *strings.Builder, k ipvs.ServiceKey) {
	if k.FWMark != 0 {
		b.WriteString("-f ")
		b.WriteString(strconv.FormatUint(uint64(k.FWMark), 10))
		if k.Family == afInet6 {
			b.WriteString(" -6")
		}
		return
	}
	switch k.Protocol {
	case ipvs.UDP:
		b.WriteString("-u ")
	case ipvs.SCTP:
		b.WriteString("--sctp-service ")
	default:
		b.WriteString("-t ")
	}
	b.WriteString(netip.AddrPortFrom(k.Addr, k.Port).String())
}

func writeServiceOpts(b *strings.Builder, s ipvs.Service) {
	writeServiceID(b, s.ServiceKey)
	b.WriteString(" -s ")
	b.WriteString(s.Scheduler)
	if s.Flags&ipvs.FlagPersistent != 0 {
		fmt.Fprintf(b, " -p %d", s.Timeout)
		if s.Family == afInet6 {
			if s.Netmask != 128 {
				fmt.Fprintf(b, " -M %d", s.Netmask)
			}
		} else if s.Netmask != 0xffffffff {
			m := s.Netmask
			fmt.Fprintf(b, " -M %d.%d.%d.%d", m>>24, m>>16&0xff, m>>8&0xff, m&0xff)
		}
	}
	if s.Flags&ipvs.FlagOnePacket != 0 {
		b.WriteString(" -o")
	}
	var flags []string
	prefix := s.Scheduler
	if prefix != "mh" {
		prefix = "sh"
	}
	if s.Flags&ipvs.FlagSched1 != 0 {
		flags = append(flags, prefix+"-fallback")
	}
	if s.Flags&ipvs.FlagSched2 != 0 {
		flags = append(flags, prefix+"-port")
	}
	if len(flags) > 0 {
		b.WriteString(" -b ")
		b.WriteString(strings.Join(flags, ","))
	}
}

func destAddr(k ipvs.DestKey) string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

func writeDest(b *strings.Builder, k ipvs.ServiceKey, d ipvs.Destination) {
	writeServiceID(b, k)
	b.WriteString(" -r ")
	b.WriteString(destAddr(d.DestKey))
	switch d.Forward {
	case ipvs.Masq:
		b.WriteString(" -m")
	case ipvs.Tunnel:
		b.WriteString(" -i")
	case ipvs.Route:
		b.WriteString(" -g")
	}
	fmt.Fprintf(b, " -w %d", d.Weight)
	if d.UpperThreshold != 0 {
		fmt.Fprintf(b, " -x %d", d.UpperThreshold)
	}
	if d.LowerThreshold != 0 {
		fmt.Fprintf(b, " -y %d", d.LowerThreshold)
	}
	if d.Forward == ipvs.Tunnel && d.TunType != ipvs.TunIPIP {
		switch d.TunType {
		case ipvs.TunGUE:
			fmt.Fprintf(b, " --tun-type gue --tun-port %d", d.TunPort)
		case ipvs.TunGRE:
			b.WriteString(" --tun-type gre")
		}
	}
}
