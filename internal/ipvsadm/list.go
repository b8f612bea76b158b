package ipvsadm

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// Format selects the columns of a listing.
type Format int

// The listing layouts, named after the ipvsadm options that select them.
const (
	FormatDefault        Format = iota // ipvsadm -Ln
	FormatStats                        // --stats
	FormatRate                         // --rate
	FormatThresholds                   // --thresholds
	FormatPersistentConn               // --persistent-conn
	FormatTunInfo                      // --tun-info
)

// ListOptions tune WriteList.
type ListOptions struct {
	Info   ipvs.Info
	Format Format
	Exact  bool // --exact: print counters in full instead of K/M/G/T
	NoSort bool // --nosort: keep the order of the table
}

// WriteList prints t as "ipvsadm -Ln" does, in the layout opts.Format
// selects. It does not modify t.
func WriteList(w io.Writer, t *ipvs.Table, opts ListOptions) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "IP Virtual Server version %s (size=%d)\n", opts.Info.VersionString(), opts.Info.ConnTableSize)
	writeTitle(bw, opts.Format)
	for _, se := range ordered(t, opts.NoSort) {
		writeService(bw, se, opts)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write listing: %w", err)
	}
	return nil
}

func writeTitle(w io.Writer, f Format) {
	const local = "Prot LocalAddress:Port"
	switch f {
	case FormatStats:
		fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", local,
			"Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case FormatRate:
		fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", local,
			"CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case FormatThresholds:
		fmt.Fprintf(w, "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n", local,
			"Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case FormatPersistentConn:
		fmt.Fprintf(w, "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n", local,
			"Weight", "PersistConn", "ActiveConn", "InActConn")
	case FormatTunInfo:
		fmt.Fprint(w, "Prot LocalAddress:Port Scheduler Flags\n"+
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	default:
		fmt.Fprint(w, "Prot LocalAddress:Port Scheduler Flags\n"+
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

// family returns the address family of a service key, deriving it from
// the address when the key does not carry one.
func family(k ipvs.ServiceKey) uint16 {
	if k.Family != 0 || !k.Addr.IsValid() {
		return k.Family
	}
	return ipvs.FamilyOf(k.Addr)
}

const afInet6 = 10

// listName is the service column of a listing: "TCP  10.0.0.1:80",
// "FWM  10" or "FWM  10 IPv6".
func listName(k ipvs.ServiceKey) string {
	if k.FWMark != 0 {
		if family(k) == afInet6 {
			return fmt.Sprintf("FWM  %d IPv6", k.FWMark)
		}
		return fmt.Sprintf("FWM  %d", k.FWMark)
	}
	s := fmt.Sprintf("%-4s %s", protoName(k.Protocol), addrPort(k.Addr, k.Port))
	if family(k) != afInet6 && len(s) > 33 {
		s = s[:33]
	}
	return s
}

func protoName(p ipvs.Protocol) string {
	switch p {
	case ipvs.TCP:
		return "TCP"
	case ipvs.UDP:
		return "UDP"
	case ipvs.SCTP:
		return "SCTP"
	}
	return "?"
}

// addrPort renders an address and port as ipvsadm's numeric output does.
func addrPort(a netip.Addr, port uint16) string {
	if a.Is4() {
		return a.String() + ":" + strconv.Itoa(int(port))
	}
	return "[" + ntop6(a) + "]:" + strconv.Itoa(int(port))
}

// ntop6 renders an IPv6 address as glibc's inet_ntop does: the longest run
// of two or more zero groups compressed, and the last 32 bits in dotted
// form for IPv4-compatible (::a.b.c.d) and IPv4-mapped addresses.
func ntop6(a netip.Addr) string {
	if !a.IsValid() {
		return "::"
	}
	b := a.As16()
	var words [8]uint16
	for i := range words {
		words[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	bestBase, bestLen, curBase, curLen := -1, 0, -1, 0
	for i, wd := range words {
		if wd == 0 {
			if curBase == -1 {
				curBase, curLen = i, 1
			} else {
				curLen++
			}
			continue
		}
		if curBase != -1 && (bestBase == -1 || curLen > bestLen) {
			bestBase, bestLen = curBase, curLen
		}
		curBase = -1
	}
	if curBase != -1 && (bestBase == -1 || curLen > bestLen) {
		bestBase, bestLen = curBase, curLen
	}
	if bestBase != -1 && bestLen < 2 {
		bestBase = -1
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if bestBase != -1 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				sb.WriteByte(':')
			}
			continue
		}
		if i != 0 {
			sb.WriteByte(':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 5 && words[5] == 0xffff)) {
			fmt.Fprintf(&sb, "%d.%d.%d.%d", b[12], b[13], b[14], b[15])
			break
		}
		sb.WriteString(strconv.FormatUint(uint64(words[i]), 16))
	}
	if bestBase != -1 && bestBase+bestLen == 8 {
		sb.WriteByte(':')
	}
	return sb.String()
}

// schedFlags renders the scheduler flags of s as ipvsadm's
// print_sched_flags does; empty when none is set.
func schedFlags(s ipvs.Service) string {
	var names []string
	switch s.Scheduler {
	case "sh", "mh":
		if s.Flags&ipvs.FlagSched1 != 0 {
			names = append(names, s.Scheduler+"-fallback")
		}
		if s.Flags&ipvs.FlagSched2 != 0 {
			names = append(names, s.Scheduler+"-port")
		}
	default:
		if s.Flags&ipvs.FlagSched1 != 0 {
			names = append(names, "flag-1")
		}
		if s.Flags&ipvs.FlagSched2 != 0 {
			names = append(names, "flag-2")
		}
		if s.Flags&ipvs.FlagSched3 != 0 {
			names = append(names, "flag-3")
		}
	}
	return strings.Join(names, ",")
}

const anySchedFlag = ipvs.FlagSched1 | ipvs.FlagSched2 | ipvs.FlagSched3

// maskString renders a persistence netmask: dotted for IPv4 (Netmask holds
// the mask in host order), a prefix length for IPv6.
func maskString(s ipvs.Service) (string, bool) {
	if family(s.ServiceKey) == afInet6 {
		return strconv.Itoa(int(s.Netmask)), s.Netmask != 128
	}
	m := s.Netmask
	return fmt.Sprintf("%d.%d.%d.%d", m>>24, (m>>16)&0xff, (m>>8)&0xff, m&0xff), m != 0xffffffff
}

func writeService(w io.Writer, se ipvs.ServiceEntry, opts ListOptions) {
	name := listName(se.ServiceKey)
	switch opts.Format {
	case FormatStats:
		fmt.Fprintf(w, "%-33s", name)
		st := se.Stats
		for _, v := range []uint64{st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes} {
			largeNum(w, v, opts.Exact)
		}
	case FormatRate:
		fmt.Fprintf(w, "%-33s", name)
		st := se.Stats
		for _, v := range []uint64{st.CPS, st.InPPS, st.OutPPS, st.InBPS, st.OutBPS} {
			largeNum(w, v, opts.Exact)
		}
	default:
		fmt.Fprintf(w, "%s %s", name, se.Scheduler)
		if se.Flags&anySchedFlag != 0 {
			fmt.Fprintf(w, " (%s)", schedFlags(se.Service))
		}
		if se.Flags&ipvs.FlagPersistent != 0 {
			fmt.Fprintf(w, " persistent %d", se.Timeout)
			if m, show := maskString(se.Service); show {
				fmt.Fprintf(w, " mask %s", m)
			}
			if se.PE != "" {
				fmt.Fprintf(w, " pe %s", se.PE)
			}
		}
		if se.Flags&ipvs.FlagOnePacket != 0 {
			fmt.Fprint(w, " ops")
		}
	}
	fmt.Fprint(w, "\n")

	for _, d := range orderedDests(se.Dests, opts.NoSort) {
		dname := addrPort(d.Addr, d.Port)
		if !d.Addr.Is6() && len(dname) > 28 {
			dname = dname[:28]
		}
		switch opts.Format {
		case FormatStats:
			fmt.Fprintf(w, "  -> %-28s", dname)
			st := d.Stats
			for _, v := range []uint64{st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes} {
				largeNum(w, v, opts.Exact)
			}
			fmt.Fprint(w, "\n")
		case FormatRate:
			st := d.Stats
			fmt.Fprintf(w, "  -> %-28s %8d %8d %8d", dname, st.CPS, st.InPPS, st.OutPPS)
			largeNum(w, st.InBPS, opts.Exact)
			largeNum(w, st.OutBPS, opts.Exact)
			fmt.Fprint(w, "\n")
		case FormatThresholds:
			fmt.Fprintf(w, "  -> %-28s %-10d %-10d %-10d %-10d\n", dname,
				d.UpperThreshold, d.LowerThreshold, d.ActiveConns, d.InactConns)
		case FormatPersistentConn:
			fmt.Fprintf(w, "  -> %-28s %-9d %-11d %-10d %-10d\n", dname,
				uint32(d.Weight), d.PersistConns, d.ActiveConns, d.InactConns)
		case FormatTunInfo:
			fmt.Fprintf(w, "  -> %-28s %-7s %-13s %-6d %-10d %-10d\n", dname,
				fwdName(d.Forward), tunInfo(d.Destination), d.Weight, d.ActiveConns, d.InactConns)
		default:
			fmt.Fprintf(w, "  -> %-28s %-7s %-6d %-10d %-10d\n", dname,
				fwdName(d.Forward), d.Weight, d.ActiveConns, d.InactConns)
		}
	}
}

func fwdName(f ipvs.Forward) string {
	switch f & 7 {
	case ipvs.Masq:
		return "Masq"
	case ipvs.Local:
		return "Local"
	case ipvs.Tunnel:
		return "Tunnel"
	case ipvs.Route:
		return "Route"
	}
	return "(null)"
}

// Tunnel checksum flags (IP_VS_TUNNEL_ENCAP_FLAG_*), as kept in
// ipvs.Destination.TunFlags.
const (
	tunNoCsum  = 0
	tunCsum    = 1
	tunRemCsum = 2
)

func tunFlagName(f uint16) string {
	switch f {
	case tunNoCsum:
		return "-c"
	case tunCsum:
		return "+c"
	case tunRemCsum:
		return "r+c"
	}
	return "?"
}

func tunFlagOption(f uint16) string {
	switch f {
	case tunNoCsum:
		return "--tun-nocsum"
	case tunCsum:
		return "--tun-csum"
	case tunRemCsum:
		return "--tun-remcsum"
	}
	return "--tun-nocsum"
}

func tunInfo(d ipvs.Destination) string {
	if d.Forward != ipvs.Tunnel {
		return "n/a"
	}
	switch d.TunType {
	case ipvs.TunIPIP:
		return "ipip"
	case ipvs.TunGUE:
		return fmt.Sprintf("gue:%d:%s", d.TunPort, tunFlagName(d.TunFlags))
	case ipvs.TunGRE:
		return "gre:" + tunFlagName(d.TunFlags)
	}
	return "n/a"
}

// largeNum prints a counter as ipvsadm's print_largenum: right-aligned in
// nine columns, scaled to K, M, G or T beyond eight digits unless exact.
func largeNum(w io.Writer, i uint64, exact bool) {
	if exact {
		n := len(strconv.FormatUint(i, 10))
		width := n + 1
		if n <= 8 {
			width = 9
		}
		fmt.Fprintf(w, "%*d", width, i)
		return
	}
	switch {
	case i < 100000000:
		fmt.Fprintf(w, "%9d", i)
	case i < 1000000000:
		fmt.Fprintf(w, "%8dK", i/1000)
	case i < 100000000000:
		fmt.Fprintf(w, "%8dM", i/1000000)
	case i < 100000000000000:
		fmt.Fprintf(w, "%8dG", i/1000000000)
	default:
		fmt.Fprintf(w, "%8dT", i/1000000000000)
	}
}
