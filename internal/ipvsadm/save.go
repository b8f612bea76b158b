package ipvsadm

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// ruleName is the service part of a saved rule: "-t 10.0.0.1:80",
// "-u [2001:db8::1]:53", "--sctp-service ...", "-f 10" or "-f 10 -6".
func ruleName(k ipvs.ServiceKey) string {
	if k.FWMark != 0 {
		if family(k) == afInet6 {
			return fmt.Sprintf("-f %d -6", k.FWMark)
		}
		return fmt.Sprintf("-f %d", k.FWMark)
	}
	opt := "--xxx-service"
	switch k.Protocol {
	case ipvs.TCP:
		opt = "-t"
	case ipvs.UDP:
		opt = "-u"
	case ipvs.SCTP:
		opt = "--sctp-service"
	}
	return opt + " " + addrPort(k.Addr, k.Port)
}

// ServiceRule renders the "-A" rule that creates s, as ipvsadm -Sn prints
// it (without the leading "ipvsadm" and without a newline).
func ServiceRule(s ipvs.Service) string { return "-A " + serviceOpts(s) }

// DestRule renders the "-a" rule that adds d to the service k, as
// ipvsadm -Sn prints it (without a newline). Like ipvsadm -S, it leaves
// out the connection thresholds.
func DestRule(k ipvs.ServiceKey, d ipvs.Destination) string { return "-a " + destOpts(k, d, false) }

// FormatOp renders op as the ipvsadm arguments that make the same change,
// for example "-A -t 10.0.0.1:80 -s wlc" or
// "-e -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 0". It is the one renderer of
// changes: dry runs, logs and the test kernel print through it.
func FormatOp(op ipvs.Op) string {
	switch op.Kind {
	case ipvs.AddService:
		return ServiceRule(op.Service)
	case ipvs.EditService:
		return "-E " + serviceOpts(op.Service)
	case ipvs.DelService:
		return "-D " + ruleName(op.Service.ServiceKey)
	case ipvs.AddDest:
		return "-a " + destOpts(op.Service.ServiceKey, op.Dest, true)
	case ipvs.EditDest:
		return "-e " + destOpts(op.Service.ServiceKey, op.Dest, true)
	case ipvs.DelDest:
		return "-d " + ruleName(op.Service.ServiceKey) + " -r " + addrPort(op.Dest.Addr, op.Dest.Port)
	}
	return fmt.Sprintf("# unknown operation %s", op.Kind)
}

// serviceOpts is a service's part of a rule: its name and settings.
func serviceOpts(s ipvs.Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s -s %s", ruleName(s.ServiceKey), s.Scheduler)
	if s.Flags&ipvs.FlagPersistent != 0 {
		fmt.Fprintf(&b, " -p %d", s.Timeout)
		if m, show := maskString(s); show {
			fmt.Fprintf(&b, " -M %s", m)
		}
	}
	if s.PE != "" {
		fmt.Fprintf(&b, " --pe %s", s.PE)
	}
	if s.Flags&ipvs.FlagOnePacket != 0 {
		b.WriteString(" -o")
	}
	if s.Flags&anySchedFlag != 0 {
		b.WriteString(" -b " + schedFlags(s))
	}
	return b.String()
}

// destOpts is a real server's part of a rule, with its thresholds when
// thresholds is set.
func destOpts(k ipvs.ServiceKey, d ipvs.Destination, thresholds bool) string {
	sw := "-g"
	switch d.Forward & 7 {
	case ipvs.Masq:
		sw = "-m"
	case ipvs.Tunnel:
		sw = "-i"
	}
	s := fmt.Sprintf("%s -r %s %s -w %d", ruleName(k), addrPort(d.Addr, d.Port), sw, d.Weight)
	if thresholds && d.UpperThreshold != 0 {
		s += fmt.Sprintf(" -x %d", d.UpperThreshold)
	}
	if thresholds && d.LowerThreshold != 0 {
		s += fmt.Sprintf(" -y %d", d.LowerThreshold)
	}
	if d.Forward&7 != ipvs.Tunnel {
		return s
	}
	switch d.TunType {
	case ipvs.TunGRE:
		return s + " --tun-type gre " + tunFlagOption(d.TunFlags)
	case ipvs.TunGUE:
		return fmt.Sprintf("%s --tun-type gue --tun-port %d %s", s, d.TunPort, tunFlagOption(d.TunFlags))
	case ipvs.TunIPIP:
		return s + " --tun-type ipip"
	}
	return s
}

// WriteSave prints t in the format of "ipvsadm-save -n" (ipvsadm -Sn),
// which "ipvsadm -R" reads back: one "-A" line per service followed by
// one "-a" line per real server, in ipvsadm's order.
func WriteSave(w io.Writer, t *ipvs.Table) error {
	bw := bufio.NewWriter(w)
	for _, se := range ordered(t, false) {
		fmt.Fprintln(bw, ServiceRule(se.Service))
		for _, d := range orderedDests(se.Dests, false) {
			fmt.Fprintln(bw, DestRule(se.ServiceKey, d.Destination))
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write rules: %w", err)
	}
	return nil
}
