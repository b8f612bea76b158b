package ipvsadm

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// option describes one ipvsadm option: its canonical name, whether it is
// a command, and whether it takes an argument (0 none, 1 required, 2
// optional).
type option struct {
	name string
	cmd  bool
	arg  int
}

// shortOpt returns the option for a short option letter.
func shortOpt(c byte) (option, bool) {
	switch c {
	case 'A':
		return option{"add-service", true, 0}, true
	case 'E':
		return option{"edit-service", true, 0}, true
	case 'D':
		return option{"delete-service", true, 0}, true
	case 'C':
		return option{"clear", true, 0}, true
	case 'L', 'l':
		return option{"list", true, 0}, true
	case 'Z':
		return option{"zero", true, 0}, true
	case 'a':
		return option{"add-server", true, 0}, true
	case 'e':
		return option{"edit-server", true, 0}, true
	case 'd':
		return option{"delete-server", true, 0}, true
	case 'h':
		return option{"help", true, 0}, true
	case 'v':
		return option{"version", true, 0}, true
	case 'R':
		return option{"restore", true, 0}, true
	case 'S':
		return option{"save", true, 0}, true
	case 't':
		return option{"tcp-service", false, 1}, true
	case 'u':
		return option{"udp-service", false, 1}, true
	case 'f':
		return option{"fwmark-service", false, 1}, true
	case 's':
		return option{"scheduler", false, 1}, true
	case 'p':
		return option{"persistent", false, 2}, true
	case 'M':
		return option{"netmask", false, 1}, true
	case 'r':
		return option{"real-server", false, 1}, true
	case 'm':
		return option{"masquerading", false, 0}, true
	case 'i':
		return option{"ipip", false, 0}, true
	case 'g':
		return option{"gatewaying", false, 0}, true
	case 'w':
		return option{"weight", false, 1}, true
	case 'x':
		return option{"u-threshold", false, 1}, true
	case 'y':
		return option{"l-threshold", false, 1}, true
	case 'n':
		return option{"numeric", false, 0}, true
	case 'c':
		return option{"connection", false, 0}, true
	case 'X':
		return option{"exact", false, 0}, true
	case '6':
		return option{"ipv6", false, 0}, true
	case 'o':
		return option{"ops", false, 0}, true
	case 'b':
		return option{"sched-flags", false, 1}, true
	}
	return option{}, false
}

// shortLetters are the letters shortOpt knows.
const shortLetters = "AEDCLlZaedhvRStufspMrmigwxyncX6ob"

func longOpt(name string) (option, bool) {
	for i := 0; i < len(shortLetters); i++ {
		if o, _ := shortOpt(shortLetters[i]); o.name == name {
			return o, true
		}
	}
	switch name {
	case "set":
		return option{name, true, 0}, true
	case "start-daemon", "stop-daemon":
		return option{name, true, 1}, true
	case "sctp-service", "pe", "mcast-interface", "syncid", "mcast-group", "mcast-port", "mcast-ttl",
		"sync-maxlen", "tun-type", "tun-port":
		return option{name, false, 1}, true
	case "timeout", "daemon", "stats", "rate", "thresholds", "persistent-conn", "nosort", "sort",
		"tun-info", "tun-nocsum", "tun-csum", "tun-remcsum":
		return option{name, false, 0}, true
	}
	return option{}, false
}

// command is one parsed ipvsadm invocation.
type command struct {
	cmd       string
	cmdCol    Pos
	note      string
	svc       ipvs.Service
	svcCol    Pos
	hasSvc    bool
	dest      ipvs.Destination
	destAF    uint16
	hasDest   bool
	seen      map[string]Pos // option name -> where it was given
	schedFlag string
	flagCol   Pos
	timeouts  SetTimeouts // --set
}

// parseCommand reads the arguments of one ipvsadm invocation (the words
// after "ipvsadm") the way ipvsadm's popt table does.
func (r *Rules) parseCommand(toks []Word) (*command, error) {
	c := &command{seen: map[string]Pos{}}
	// ipvsadm's defaults (process_options).
	c.dest.Weight = 1
	c.dest.Forward = ipvs.Route
	c.svc.Netmask = 0xffffffff
	var args []Word // positional arguments (--set values)
	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		type occ struct {
			o   option
			val *Word
			at  Pos
		}
		var occs []occ
		switch {
		case strings.HasPrefix(tk.Text, "--") && len(tk.Text) > 2:
			name, val, hasVal := strings.Cut(tk.Text[2:], "=")
			o, ok := longOpt(name)
			if !ok {
				return nil, errAt(tk.Pos, "unknown option %q", tk.Text)
			}
			var v *Word
			switch {
			case hasVal && o.arg == 0:
				return nil, errAt(tk.Pos, "option --%s takes no argument", name)
			case hasVal:
				v = &Word{Text: val, Pos: tk.at(3 + len(name)), Verbatim: tk.Verbatim}
			case o.arg == 1:
				if i+1 >= len(toks) {
					return nil, errAt(tk.Pos, "option --%s needs an argument", name)
				}
				i++
				v = &toks[i]
			case o.arg == 2 && i+1 < len(toks) && !strings.HasPrefix(toks[i+1].Text, "-"):
				i++
				v = &toks[i]
			}
			occs = append(occs, occ{o, v, tk.Pos})
		case strings.HasPrefix(tk.Text, "-") && len(tk.Text) > 1:
			for j := 1; j < len(tk.Text); j++ {
				// The option's own position: the word for "-r", the
				// letter inside a bundle such as "-At".
				at := tk.Pos
				if j > 1 {
					at = tk.at(j)
				}
				o, ok := shortOpt(tk.Text[j])
				if !ok {
					return nil, errAt(at, "unknown option -%c", tk.Text[j])
				}
				if o.arg == 0 {
					occs = append(occs, occ{o, nil, at})
					continue
				}
				var v *Word
				switch {
				case j+1 < len(tk.Text):
					v = &Word{Text: tk.Text[j+1:], Pos: tk.at(j + 1), Verbatim: tk.Verbatim}
				case o.arg == 1:
					if i+1 >= len(toks) {
						return nil, errAt(at, "option -%c needs an argument", tk.Text[j])
					}
					i++
					v = &toks[i]
				case i+1 < len(toks) && !strings.HasPrefix(toks[i+1].Text, "-"):
					i++
					v = &toks[i]
				}
				occs = append(occs, occ{o, v, at})
				break
			}
		default:
			args = append(args, tk)
			continue
		}
		for _, oc := range occs {
			if err := r.option(c, oc.o, oc.val, oc.at); err != nil {
				return nil, err
			}
		}
	}
	if c.cmd == "" {
		return nil, errAt(toks[0].Pos, "no command given (want -A, -E, -D, -C, -a, -e or -d)")
	}
	if c.cmd == "set" {
		t, err := parseSetValues(args, c.cmdCol)
		if err != nil {
			return nil, err
		}
		c.timeouts = t
	}
	if c.note != "" {
		return c, nil
	}
	if len(args) > 0 {
		return nil, errAt(args[0].Pos, "unexpected argument %q", args[0].Text)
	}
	return c, c.check()
}

func (r *Rules) option(c *command, o option, v *Word, col Pos) error {
	if o.cmd {
		if c.cmd != "" {
			return errAt(col, "multiple commands specified")
		}
		c.cmd, c.cmdCol = o.name, col
		switch o.name {
		case "add-service", "edit-service", "delete-service", "clear", "add-server", "edit-server", "delete-server":
		case "list", "save", "zero", "help", "version", "restore":
			c.note = fmt.Sprintf("ipvsadm --%s does not change the table", o.name)
		case "set":
			c.note = "connection timeouts (--set): director.timeouts, not part of the table"
		default:
			c.note = fmt.Sprintf("the connection sync daemon (--%s) is not part of the table", o.name)
		}
		return nil
	}
	if _, dup := c.seen[o.name]; dup && o.name != "sort" {
		return errAt(col, "multiple '%s' options specified", o.name)
	}
	c.seen[o.name] = col
	val := ""
	vcol := col
	if v != nil {
		val, vcol = v.Text, v.Pos
	}
	switch o.name {
	case "tcp-service", "udp-service", "sctp-service":
		proto := ipvs.TCP
		switch o.name {
		case "udp-service":
			proto = ipvs.UDP
		case "sctp-service":
			proto = ipvs.SCTP
		}
		a, port, _, err := r.parseAddrPort(val, proto)
		if err != nil {
			return errAt(vcol, "illegal virtual server address[:port] %q: %v", val, err)
		}
		c.svc.Protocol, c.svc.Addr, c.svc.Port, c.svc.Family = proto, a, port, ipvs.FamilyOf(a)
		if a.Is6() {
			c.svc.Netmask = 128
		}
		c.hasSvc, c.svcCol = true, vcol
	case "fwmark-service":
		m, err := strconv.ParseUint(val, 10, 32)
		if err != nil || m == 0 {
			return errAt(vcol, "invalid fwmark value %q (want an integer from 1 to 4294967295)", val)
		}
		c.svc.FWMark, c.svc.Family, c.svc.Protocol = uint32(m), 2, 0
		c.hasSvc, c.svcCol = true, vcol
	case "ipv6":
		if c.svc.FWMark == 0 {
			return errAt(col, "-6 used before -f")
		}
		c.svc.Family, c.svc.Netmask = afInet6, 128
	case "scheduler":
		if val == "" {
			return errAt(vcol, "empty scheduler name")
		}
		c.svc.Scheduler = val
	case "persistent":
		c.svc.Flags |= ipvs.FlagPersistent
		c.svc.Timeout = 360
		if v != nil {
			t, err := strconv.ParseUint(val, 10, 32)
			if err != nil || t < 1 || t > 86400*31 {
				return errAt(vcol, "invalid timeout value %q (want 1 to 2678400 seconds)", val)
			}
			c.svc.Timeout = uint32(t)
		}
	case "netmask":
		if c.svc.Family == afInet6 {
			m, err := strconv.Atoi(val)
			if err != nil || m < 1 || m > 128 {
				return errAt(vcol, "illegal ipv6 netmask %q (want a prefix length from 1 to 128)", val)
			}
			c.svc.Netmask = uint32(m)
		} else {
			a, err := netip.ParseAddr(val)
			if err != nil || !a.Is4() {
				return errAt(vcol, "illegal virtual server persistent mask %q", val)
			}
			b := a.As4()
			c.svc.Netmask = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		}
	case "real-server":
		a, port, hasPort, err := r.parseAddrPort(val, c.svc.Protocol)
		if err != nil {
			return errAt(vcol, "illegal real server address[:port] %q: %v", val, err)
		}
		c.dest.Addr, c.destAF = a, ipvs.FamilyOf(a)
		c.dest.Port = port
		if !hasPort {
			c.dest.Port = c.svc.Port
		}
		c.hasDest = true
	case "masquerading", "ipip", "gatewaying":
		if other, ok := firstSeen(c.seen, o.name, "masquerading", "ipip", "gatewaying"); ok {
			return errAt(col, "multiple 'forwarding-method' options specified (--%s and --%s)", other, o.name)
		}
		switch o.name {
		case "masquerading":
			c.dest.Forward = ipvs.Masq
		case "ipip":
			c.dest.Forward = ipvs.Tunnel
		default:
			c.dest.Forward = ipvs.Route
		}
	case "weight":
		w, err := strconv.Atoi(val)
		if err != nil || w < 0 || w > 65535 {
			return errAt(vcol, "illegal weight %q (want 0 to 65535)", val)
		}
		c.dest.Weight = int32(w)
	case "u-threshold", "l-threshold":
		x, err := strconv.ParseUint(val, 10, 31)
		if err != nil {
			return errAt(vcol, "illegal %s %q", o.name, val)
		}
		if o.name == "u-threshold" {
			c.dest.UpperThreshold = uint32(x)
		} else {
			c.dest.LowerThreshold = uint32(x)
		}
	case "ops":
		c.svc.Flags |= ipvs.FlagOnePacket
	case "pe":
		c.svc.PE = val
	case "sched-flags":
		c.schedFlag, c.flagCol = val, vcol
	case "tun-type":
		switch val {
		case "ipip":
			c.dest.TunType = ipvs.TunIPIP
		case "gue":
			c.dest.TunType = ipvs.TunGUE
		case "gre":
			c.dest.TunType = ipvs.TunGRE
		default:
			return errAt(vcol, "illegal tunnel type %q (want ipip, gue or gre)", val)
		}
	case "tun-port":
		x, err := strconv.Atoi(val)
		if err != nil || x < 1 || x > 65535 {
			return errAt(vcol, "illegal tunnel port %q", val)
		}
		c.dest.TunPort = uint16(x)
	case "tun-nocsum":
		c.dest.TunFlags |= tunNoCsum
	case "tun-csum":
		c.dest.TunFlags |= tunCsum
	case "tun-remcsum":
		c.dest.TunFlags |= tunRemCsum
	}
	return nil
}

func firstSeen(seen map[string]Pos, self string, names ...string) (string, bool) {
	for _, n := range names {
		if n == self {
			continue
		}
		if _, ok := seen[n]; ok {
			return n, true
		}
	}
	return "", false
}

// allowed reports whether a command accepts an option besides the
// service (ipvsadm's commands_v_options table).
func allowed(cmd, opt string) bool {
	switch opt {
	case "tcp-service", "udp-service", "sctp-service", "fwmark-service", "ipv6":
		return cmd != "clear"
	}
	switch cmd {
	case "add-service", "edit-service":
		return strings.Contains(" scheduler persistent netmask ops pe sched-flags ", " "+opt+" ")
	case "add-server", "edit-server":
		return strings.Contains(" real-server masquerading ipip gatewaying weight u-threshold l-threshold"+
			" tun-type tun-port tun-nocsum tun-csum tun-remcsum ", " "+opt+" ")
	case "delete-server":
		return opt == "real-server"
	}
	return false
}

// check applies ipvsadm's generic_opt_check and the checks of
// process_options.
func (c *command) check() error {
	for name, col := range c.seen {
		if !allowed(c.cmd, name) {
			return errAt(col, "illegal '%s' option with the '%s' command", name, c.cmd)
		}
	}
	if c.cmd == "clear" {
		return nil
	}
	if !c.hasSvc {
		return errAt(c.cmdCol, "you need to supply the 'service-address' option for the '%s' command", c.cmd)
	}
	if strings.HasSuffix(c.cmd, "-server") && !c.hasDest {
		return errAt(c.cmdCol, "you need to supply the 'real-server' option for the '%s' command", c.cmd)
	}
	if c.schedFlag != "" {
		sched := c.svc.Scheduler
		if sched == "" {
			sched = "wlc"
		}
		for _, f := range strings.Split(c.schedFlag, ",") {
			switch {
			case f == "flag-1":
				c.svc.Flags |= ipvs.FlagSched1
			case f == "flag-2":
				c.svc.Flags |= ipvs.FlagSched2
			case f == "flag-3":
				c.svc.Flags |= ipvs.FlagSched3
			case f == "sh-fallback" || f == "mh-fallback":
				if sched != f[:2] {
					return errAt(c.flagCol, "incompatible scheduler flag %q with scheduler %s", f, sched)
				}
				c.svc.Flags |= ipvs.FlagSched1
			case f == "sh-port" || f == "mh-port":
				if sched != f[:2] {
					return errAt(c.flagCol, "incompatible scheduler flag %q with scheduler %s", f, sched)
				}
				c.svc.Flags |= ipvs.FlagSched2
			default:
				return errAt(c.flagCol, "invalid scheduler flag %q (want sh-fallback, sh-port, mh-fallback, mh-port or flag-1..3)", f)
			}
		}
	}
	switch c.cmd {
	case "add-service", "edit-service":
		if c.svc.FWMark == 0 && c.svc.Port == 0 && c.svc.Flags&ipvs.FlagPersistent == 0 {
			return errAt(c.svcCol, "zero port specified for non-persistent service")
		}
		if c.svc.Flags&ipvs.FlagOnePacket != 0 && c.svc.FWMark == 0 && c.svc.Protocol != ipvs.UDP {
			return errAt(c.seen["ops"], "one-packet scheduling is only for UDP virtual services")
		}
		if c.svc.Scheduler == "" {
			c.svc.Scheduler = "wlc"
		}
	case "add-server", "edit-server":
		if c.svc.FWMark == 0 && (c.dest.Forward == ipvs.Tunnel || c.dest.Forward == ipvs.Route) {
			c.dest.Port = c.svc.Port
		}
		if c.destAF != c.svc.Family && c.dest.Forward != ipvs.Tunnel {
			return errAt(c.seen["real-server"], "different address family is allowed only for tunneling servers")
		}
		tunOpt := ""
		for _, o := range []string{"tun-type", "tun-port", "tun-nocsum", "tun-csum", "tun-remcsum"} {
			if _, ok := c.seen[o]; ok {
				if tunOpt == "" {
					tunOpt = o
				}
			}
		}
		if tunOpt != "" && c.dest.Forward != ipvs.Tunnel {
			return errAt(c.seen[tunOpt], "tunnel options conflict with forward method")
		}
		return c.checkTunnel()
	}
	return nil
}

func (c *command) checkTunnel() error {
	_, port := c.seen["tun-port"]
	csums := 0
	for _, o := range []string{"tun-nocsum", "tun-csum", "tun-remcsum"} {
		if _, ok := c.seen[o]; ok {
			csums++
		}
	}
	switch c.dest.TunType {
	case ipvs.TunIPIP:
		for _, o := range []string{"tun-port", "tun-nocsum", "tun-csum", "tun-remcsum"} {
			if col, ok := c.seen[o]; ok {
				return errAt(col, "illegal '%s' option with the 'ipip' tunnel type", o)
			}
		}
	case ipvs.TunGUE:
		if !port {
			return errAt(c.seen["tun-type"], "you need to supply the 'tun-port' option for the 'gue' tunnel type")
		}
	case ipvs.TunGRE:
		if port {
			return errAt(c.seen["tun-port"], "illegal 'tun-port' option with the 'gre' tunnel type")
		}
		if col, ok := c.seen["tun-remcsum"]; ok {
			return errAt(col, "illegal 'tun-remcsum' option with the 'gre' tunnel type")
		}
	}
	if csums > 1 {
		return errAt(c.seen["tun-type"], "only one of --tun-nocsum, --tun-csum and --tun-remcsum may be given")
	}
	return nil
}

// parseAddrPort reads "1.2.3.4", "1.2.3.4:80", "[2001:db8::1]:80" or a
// bare IPv6 address, as ipvsadm's parse_service does: the port may be a
// number or a service name looked up for the service's protocol (what
// ipvsadm-save prints without -n); host names are not resolved.
func (r *Rules) parseAddrPort(s string, proto ipvs.Protocol) (netip.Addr, uint16, bool, error) {
	if s == "" {
		return netip.Addr{}, 0, false, errors.New("empty address")
	}
	var host, port string
	hasPort := false
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 || !strings.HasPrefix(s[end+1:], ":") {
			return netip.Addr{}, 0, false, errors.New("want [IPv6]:port")
		}
		host, port, hasPort = s[1:end], s[end+2:], true
	default:
		if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
			return a.Unmap(), 0, false, nil
		}
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port, hasPort = s[:i], s[i+1:], true
		} else {
			host = s
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, false, fmt.Errorf("%q is not a numeric IP address (host names are not resolved; save with ipvsadm-save -n)", host)
	}
	if a.Zone() != "" {
		return netip.Addr{}, 0, false, errors.New("zones are not allowed")
	}
	if !hasPort {
		return a, 0, false, nil
	}
	if x, err := strconv.ParseUint(port, 10, 16); err == nil {
		return a, uint16(x), true, nil
	}
	x, err := r.lookupPort(servicesProto(proto), port)
	if err != nil {
		return netip.Addr{}, 0, false, err
	}
	return a, x, true, nil
}

// servicesProto is the protocol column of /etc/services ipvsadm looks a port
// name up in; firewall-mark services use tcp, as ipvsadm does.
func servicesProto(p ipvs.Protocol) string {
	switch p {
	case ipvs.UDP:
		return "udp"
	case ipvs.SCTP:
		return "sctp"
	}
	return "tcp"
}
