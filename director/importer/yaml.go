package importer

import (
	"fmt"
	"io/fs"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lvs-node/lvs-node/internal/ipvsadm"
)

// vsOut is one virtual service as it will be written.
type vsOut struct {
	name       string
	vip        netip.Addr // invalid for fwmark services
	family6    bool       // fwmark services only
	protocol   string     // tcp, udp, sctp; empty for fwmark services
	port       uint16
	fwmark     uint32
	scheduler  string
	schedFlags []string
	persistent bool
	timeout    uint32
	netmask    string
	pe         string // persistence engine
	onePacket  bool
	forwarding string
	real       []rsOut
	comments   []string // input kept as comments
	info       []string // how the import read the input
	check      *checkOut
	checkNotes []string
	sorry      *sorryOut
	quorum     int // quorum min_up, 0 for none
}

// sorryOut is a sorry server.
type sorryOut struct {
	addr       netip.Addr
	port       uint16
	hasPort    bool
	forwarding string
}

// rsOut is one real server as it will be written.
type rsOut struct {
	addr       netip.Addr
	port       uint16
	hasPort    bool
	weight     int64
	forwarding string // empty when it equals the service's
	upper      uint32
	lower      uint32
	tunType    string
	tunPort    uint16
	comments   []string
	check      *checkOut
	checkNotes []string
}

// docOut is the whole director.yaml.
type docOut struct {
	header       []string
	timeouts     *ipvsadm.SetTimeouts // connection timeouts (timeouts.go)
	timeoutsFrom string               // where they come from, said above them
	services     []vsOut
	trailer      []string
}

func comment(b *strings.Builder, indent, text string) {
	// YAML comments hold printable characters only.
	text = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || (r >= 0x20 && r != 0x7f && r != 0xfeff && !(r >= 0x80 && r < 0xa0) && r != '\uFFFD') {
			return r
		}
		return '?'
	}, strings.ToValidUTF8(text, "?"))
	for _, l := range strings.Split(text, "\n") {
		b.WriteString(indent + "# " + strings.TrimRight(l, " \t\r") + "\n")
	}
}

// addr quotes IPv6 addresses so that no YAML reader takes the colons for
// anything else.
func addr(a netip.Addr) string {
	if a.Is6() {
		return strconv.Quote(a.String())
	}
	return a.String()
}

// str writes a string value plainly when it is a simple word and
// double-quoted otherwise, so that no input can change the structure.
func str(s string) string {
	if s != "" && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		plain := true
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				plain = false
				break
			}
		}
		switch strings.ToLower(s) {
		case "true", "false", "yes", "no", "on", "off", "null", "y", "n":
			plain = false
		}
		if plain {
			return s
		}
	}
	return strconv.Quote(s)
}

// setPE maps a persistence engine (text is the input that names it): the
// director knows the kernel's sip engine, on persistent UDP and
// firewall-mark services.
func (v *vsOut) setPE(pe, text string) {
	switch {
	case pe != "sip":
		v.comments = append(v.comments, fmt.Sprintf("%s (not mapped: unknown persistence engine; the kernel has sip)", text))
	case !v.persistent:
		v.comments = append(v.comments, fmt.Sprintf("%s (not mapped: the kernel consults an engine on persistent services only)", text))
	case v.protocol != "" && v.protocol != "udp":
		v.comments = append(v.comments, fmt.Sprintf("%s (not mapped: the sip engine reads SIP over UDP, this service is %s)", text, v.protocol))
	default:
		v.pe = pe
	}
}

// defaultForward picks the service forwarding: the method most real
// servers use (dr, then nat, then tun on a tie), or def when there are
// none.
func defaultForward(rs []rsOut, def string) string {
	if len(rs) == 0 {
		return def
	}
	count := map[string]int{}
	for _, r := range rs {
		count[r.forwarding]++
	}
	best, n := def, 0
	for _, f := range []string{"dr", "nat", "tun"} {
		if count[f] > n {
			best, n = f, count[f]
		}
	}
	return best
}

// uniqueNames fills empty names and makes them unique.
func uniqueNames(vs []vsOut) {
	used := map[string]bool{}
	for i := range vs {
		base := vs[i].name
		if base == "" {
			base = genName(vs[i])
		}
		name := base
		for n := 2; used[name]; n++ {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		used[name] = true
		vs[i].name = name
	}
}

func genName(v vsOut) string {
	if v.fwmark != 0 {
		if v.family6 {
			return fmt.Sprintf("fwm6-%d", v.fwmark)
		}
		return fmt.Sprintf("fwm-%d", v.fwmark)
	}
	return fmt.Sprintf("%s-%s-%d", v.protocol, strings.ReplaceAll(v.vip.String(), ":", "-"), v.port)
}

// Options tune an import.
type Options struct {
	// Services resolves port names (ipvsadm-save without -n prints them);
	// nil reads /etc/services, as ipvsadm does.
	Services ipvsadm.Services
	// ConfigID is keepalived's -i: lines starting "@ID" are read only when
	// it matches, "@^ID" when it does not. Empty: such lines are an error
	// where they matter for the table.
	ConfigID string
	// FS opens the files keepalived's include names, by absolute path
	// without the leading slash; nil is the host's file system.
	FS fs.FS
}

// Result is an imported director.yaml and what went into it.
type Result struct {
	YAML        []byte
	Services    int
	RealServers int
	// Comments counts the statements of the input kept as comments:
	// what was not mapped, or not what keepalived or the script runs.
	Comments int
}

// Summary is the line "lvs-node import" prints on standard error.
func (r *Result) Summary() string {
	return fmt.Sprintf("%d services, %d real servers, %d lines kept as comments", r.Services, r.RealServers, r.Comments)
}

func (d *docOut) result() *Result {
	r := &Result{YAML: d.render(), Services: len(d.services), Comments: len(d.trailer)}
	for _, v := range d.services {
		r.RealServers += len(v.real)
		r.Comments += len(v.comments)
		for _, rs := range v.real {
			r.Comments += len(rs.comments)
		}
	}
	return r
}

// writeCheck writes a health_check block at indent.
func writeCheck(b *strings.Builder, indent string, c *checkOut) {
	b.WriteString(indent + "health_check:\n")
	for _, p := range c.kv {
		fmt.Fprintf(b, "%s  %s: %s\n", indent, p[0], p[1])
	}
}

func (d *docOut) render() []byte {
	uniqueNames(d.services)
	var b strings.Builder
	for _, h := range d.header {
		comment(&b, "", h)
	}
	writeDirector(&b, d.timeouts, d.timeoutsFrom)
	if len(d.services) == 0 {
		b.WriteString("virtual_services: []\n")
	} else {
		b.WriteString("virtual_services:\n")
	}
	for _, v := range d.services {
		fmt.Fprintf(&b, "  - name: %s\n", str(v.name))
		if v.fwmark != 0 {
			fmt.Fprintf(&b, "    fwmark: %d\n", v.fwmark)
			if v.family6 {
				b.WriteString("    family: ipv6\n")
			}
		} else {
			fmt.Fprintf(&b, "    vip: %s\n    protocol: %s\n    port: %d\n", addr(v.vip), v.protocol, v.port)
		}
		fmt.Fprintf(&b, "    scheduler: %s\n", str(v.scheduler))
		if len(v.schedFlags) > 0 {
			flags := make([]string, len(v.schedFlags))
			for i, f := range v.schedFlags {
				flags[i] = str(f)
			}
			fmt.Fprintf(&b, "    scheduler_flags: [%s]\n", strings.Join(flags, ", "))
		}
		if v.persistent && v.pe != "" {
			fmt.Fprintf(&b, "    persistence: {timeout: %ds, netmask: %s, engine: %s}\n", v.timeout, strconv.Quote(v.netmask), str(v.pe))
		} else if v.persistent {
			fmt.Fprintf(&b, "    persistence: {timeout: %ds, netmask: %s}\n", v.timeout, strconv.Quote(v.netmask))
		}
		if v.onePacket {
			b.WriteString("    one_packet: true\n")
		}
		fwd := v.forwarding
		if fwd == "" {
			fwd = defaultForward(v.real, "dr")
		}
		fmt.Fprintf(&b, "    forwarding: %s\n", fwd)
		for _, c := range v.info {
			comment(&b, "    ", c)
		}
		for _, c := range v.comments {
			comment(&b, "    ", c)
		}
		if v.check != nil {
			for _, c := range v.checkNotes {
				comment(&b, "    ", c)
			}
			writeCheck(&b, "    ", v.check)
		}
		if s := v.sorry; s != nil {
			fields := []string{"address: " + addr(s.addr)}
			if s.hasPort {
				fields = append(fields, fmt.Sprintf("port: %d", s.port))
			}
			fields = append(fields, "forwarding: "+s.forwarding)
			fmt.Fprintf(&b, "    sorry_server: {%s}\n", strings.Join(fields, ", "))
		}
		if v.quorum > 0 {
			fmt.Fprintf(&b, "    quorum: {min_up: %d}\n", v.quorum)
		}
		if len(v.real) == 0 {
			b.WriteString("    real_servers: []\n")
			continue
		}
		b.WriteString("    real_servers:\n")
		for _, r := range v.real {
			fields := []string{"address: " + addr(r.addr)}
			if r.hasPort {
				fields = append(fields, fmt.Sprintf("port: %d", r.port))
			}
			fields = append(fields, fmt.Sprintf("weight: %d", r.weight))
			if r.forwarding != "" && r.forwarding != fwd {
				fields = append(fields, "forwarding: "+r.forwarding)
			}
			if r.upper != 0 {
				fields = append(fields, fmt.Sprintf("upper_threshold: %d", r.upper))
			}
			if r.lower != 0 {
				fields = append(fields, fmt.Sprintf("lower_threshold: %d", r.lower))
			}
			if r.tunType != "" && r.tunType != "ipip" {
				fields = append(fields, "tunnel_type: "+r.tunType)
				if r.tunPort != 0 {
					fields = append(fields, fmt.Sprintf("tunnel_port: %d", r.tunPort))
				}
			}
			if len(r.comments) == 0 && r.check == nil {
				fmt.Fprintf(&b, "      - {%s}\n", strings.Join(fields, ", "))
				continue
			}
			for i, f := range fields {
				if i == 0 {
					fmt.Fprintf(&b, "      - %s\n", f)
				} else {
					fmt.Fprintf(&b, "        %s\n", f)
				}
			}
			for _, c := range r.comments {
				comment(&b, "        ", c)
			}
			if r.check != nil {
				writeCheck(&b, "        ", r.check)
			}
		}
	}
	if len(d.trailer) > 0 {
		b.WriteString("\n")
		comment(&b, "", "Not mapped (kept for review):")
		for _, t := range d.trailer {
			comment(&b, "", "  "+t)
		}
	}
	return []byte(b.String())
}
