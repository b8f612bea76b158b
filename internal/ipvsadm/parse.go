package ipvsadm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// Pos is a position in a rules file; Line and Column start at 1.
type Pos struct {
	File   string
	Line   int
	Column int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column) }

// ParseError is a problem in a rules file.
type ParseError struct {
	Pos Pos
	Msg string
}

func (e *ParseError) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrNotRule is wrapped by ParseSave's error for a command that is valid
// for ipvsadm but does not describe table contents (-L, --set,
// --start-daemon, ...).
var ErrNotRule = errors.New("not a table rule")

// Note is a line of a script that ParseScript did not turn into table
// contents, with the reason.
type Note struct {
	Pos    Pos
	Text   string // the line as written
	Reason string
}

// ParseSave reads rules in the format of "ipvsadm-save" / "ipvsadm -S" (and
// scripts of "ipvsadm -A/-a ..." lines) into a table, applying them in
// order as "ipvsadm -R" would. Any line that does not describe table
// contents is an error, as is any rule ipvsadm would reject.
func ParseSave(r io.Reader, name string) (*ipvs.Table, error) {
	t, notes, err := ParseScript(r, name)
	if err != nil {
		return nil, err
	}
	if len(notes) > 0 {
		n := notes[0]
		return nil, &ruleError{ParseError{Pos: n.Pos, Msg: n.Reason}}
	}
	return t, nil
}

type ruleError struct{ ParseError }

func (e *ruleError) Unwrap() error { return ErrNotRule }

// ParseScript is ParseSave for shell scripts: commands that ipvsadm
// accepts but that do not describe table contents (listing, zeroing,
// timeouts, sync daemons) and lines that are not ipvsadm commands at all
// are returned as notes instead of failing. Malformed ipvsadm commands
// are still errors.
func ParseScript(r io.Reader, name string) (*ipvs.Table, []Note, error) {
	p := &parser{name: name, t: &ipvs.Table{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	lineNo, start := 0, 0
	var pending string
	for sc.Scan() {
		lineNo++
		text := sc.Text()
		if pending == "" {
			start = lineNo
		}
		if strings.HasSuffix(text, "\\") {
			pending += strings.TrimSuffix(text, "\\") + " "
			continue
		}
		full := pending + text
		pending = ""
		if err := p.line(start, full); err != nil {
			return nil, nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	if pending != "" {
		if err := p.line(start, pending); err != nil {
			return nil, nil, err
		}
	}
	return p.t, p.notes, nil
}

type token struct {
	s   string
	col int
}

type parser struct {
	name  string
	t     *ipvs.Table
	notes []Note
}

func (p *parser) errAt(line, col int, format string, args ...any) error {
	return &ParseError{Pos: Pos{File: p.name, Line: line, Column: col}, Msg: fmt.Sprintf(format, args...)}
}

// split breaks a line into words: blanks separate, single and double
// quotes group, and a word starting with '#' starts a comment.
func split(line string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(line) {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
			i++
		}
		if i >= len(line) || line[i] == '#' {
			break
		}
		start := i
		var sb strings.Builder
		for i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' {
			c := line[i]
			if c == '"' || c == '\'' {
				end := strings.IndexByte(line[i+1:], c)
				if end < 0 {
					return nil, fmt.Errorf("column %d: unterminated quote", i+1)
				}
				sb.WriteString(line[i+1 : i+1+end])
				i += end + 2
				continue
			}
			sb.WriteByte(c)
			i++
		}
		toks = append(toks, token{s: sb.String(), col: start + 1})
	}
	return toks, nil
}

func (p *parser) line(n int, text string) error {
	toks, err := split(text)
	if err != nil {
		return p.errAt(n, 1, "%v", err)
	}
	if len(toks) == 0 {
		return nil
	}
	// Accept "ipvsadm ...", "/sbin/ipvsadm ...", "$IPVSADM ..." as well as
	// bare saved rules.
	first := toks[0].s
	if path.Base(first) == "ipvsadm" || first == "$IPVSADM" || first == "${IPVSADM}" {
		toks = toks[1:]
		if len(toks) == 0 {
			p.notes = append(p.notes, Note{Pos: Pos{p.name, n, 1}, Text: strings.TrimSpace(text), Reason: "ipvsadm without arguments only lists the table"})
			return nil
		}
	} else if !strings.HasPrefix(first, "-") {
		p.notes = append(p.notes, Note{Pos: Pos{p.name, n, toks[0].col}, Text: strings.TrimSpace(text), Reason: "not an ipvsadm command"})
		return nil
	}
	c, err := p.parseCommand(n, toks)
	if err != nil {
		return err
	}
	if c.note != "" {
		p.notes = append(p.notes, Note{Pos: Pos{p.name, n, toks[0].col}, Text: strings.TrimSpace(text), Reason: c.note})
		return nil
	}
	return p.apply(n, c)
}

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
	cmdCol    int
	note      string
	svc       ipvs.Service
	svcCol    int
	hasSvc    bool
	dest      ipvs.Destination
	destAF    uint16
	hasDest   bool
	seen      map[string]int // option name -> column
	schedFlag string
	flagCol   int
}

func (p *parser) parseCommand(n int, toks []token) (*command, error) {
	c := &command{seen: map[string]int{}}
	// ipvsadm's defaults (process_options).
	c.dest.Weight = 1
	c.dest.Forward = ipvs.Route
	c.svc.Netmask = 0xffffffff
	var args []token // positional arguments (--set values)
	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		type occ struct {
			o   option
			val *token
		}
		var occs []occ
		switch {
		case strings.HasPrefix(tk.s, "--") && len(tk.s) > 2:
			name, val, hasVal := strings.Cut(tk.s[2:], "=")
			o, ok := longOpt(name)
			if !ok {
				return nil, p.errAt(n, tk.col, "unknown option %q", tk.s)
			}
			var v *token
			switch {
			case hasVal && o.arg == 0:
				return nil, p.errAt(n, tk.col, "option --%s takes no argument", name)
			case hasVal:
				v = &token{s: val, col: tk.col + 3 + len(name)}
			case o.arg == 1:
				if i+1 >= len(toks) {
					return nil, p.errAt(n, tk.col, "option --%s needs an argument", name)
				}
				i++
				v = &toks[i]
			case o.arg == 2 && i+1 < len(toks) && !strings.HasPrefix(toks[i+1].s, "-"):
				i++
				v = &toks[i]
			}
			occs = append(occs, occ{o, v})
		case strings.HasPrefix(tk.s, "-") && len(tk.s) > 1:
			for j := 1; j < len(tk.s); j++ {
				o, ok := shortOpt(tk.s[j])
				if !ok {
					return nil, p.errAt(n, tk.col+j, "unknown option -%c", tk.s[j])
				}
				if o.arg == 0 {
					occs = append(occs, occ{o, nil})
					continue
				}
				var v *token
				switch {
				case j+1 < len(tk.s):
					v = &token{s: tk.s[j+1:], col: tk.col + j + 1}
				case o.arg == 1:
					if i+1 >= len(toks) {
						return nil, p.errAt(n, tk.col+j, "option -%c needs an argument", tk.s[j])
					}
					i++
					v = &toks[i]
				case i+1 < len(toks) && !strings.HasPrefix(toks[i+1].s, "-"):
					i++
					v = &toks[i]
				}
				occs = append(occs, occ{o, v})
				break
			}
		default:
			args = append(args, tk)
			continue
		}
		for _, oc := range occs {
			if err := p.option(n, c, oc.o, oc.val, tk.col); err != nil {
				return nil, err
			}
		}
	}
	if c.cmd == "" {
		return nil, p.errAt(n, toks[0].col, "no command given (want -A, -E, -D, -C, -a, -e or -d)")
	}
	if c.note != "" {
		return c, nil
	}
	if len(args) > 0 {
		return nil, p.errAt(n, args[0].col, "unexpected argument %q", args[0].s)
	}
	return c, p.check(n, c)
}

func (p *parser) option(n int, c *command, o option, v *token, col int) error {
	if o.cmd {
		if c.cmd != "" {
			return p.errAt(n, col, "multiple commands specified")
		}
		c.cmd, c.cmdCol = o.name, col
		switch o.name {
		case "add-service", "edit-service", "delete-service", "clear", "add-server", "edit-server", "delete-server":
		case "list", "save", "zero", "help", "version", "restore":
			c.note = fmt.Sprintf("ipvsadm --%s does not change the table", o.name)
		case "set":
			c.note = "connection timeouts (--set) are not part of the table"
		default:
			c.note = fmt.Sprintf("the connection sync daemon (--%s) is not part of the table", o.name)
		}
		return nil
	}
	if _, dup := c.seen[o.name]; dup && o.name != "sort" {
		return p.errAt(n, col, "multiple '%s' options specified", o.name)
	}
	c.seen[o.name] = col
	val := ""
	vcol := col
	if v != nil {
		val, vcol = v.s, v.col
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
		a, port, _, err := parseAddrPort(val, proto)
		if err != nil {
			return p.errAt(n, vcol, "illegal virtual server address[:port] %q: %v", val, err)
		}
		c.svc.Protocol, c.svc.Addr, c.svc.Port, c.svc.Family = proto, a, port, ipvs.FamilyOf(a)
		if a.Is6() {
			c.svc.Netmask = 128
		}
		c.hasSvc, c.svcCol = true, vcol
	case "fwmark-service":
		m, err := strconv.ParseUint(val, 10, 32)
		if err != nil || m == 0 {
			return p.errAt(n, vcol, "invalid fwmark value %q (want an integer from 1 to 4294967295)", val)
		}
		c.svc.FWMark, c.svc.Family, c.svc.Protocol = uint32(m), 2, 0
		c.hasSvc, c.svcCol = true, vcol
	case "ipv6":
		if c.svc.FWMark == 0 {
			return p.errAt(n, col, "-6 used before -f")
		}
		c.svc.Family, c.svc.Netmask = afInet6, 128
	case "scheduler":
		if val == "" {
			return p.errAt(n, vcol, "empty scheduler name")
		}
		c.svc.Scheduler = val
	case "persistent":
		c.svc.Flags |= ipvs.FlagPersistent
		c.svc.Timeout = 360
		if v != nil {
			t, err := strconv.ParseUint(val, 10, 32)
			if err != nil || t < 1 || t > 86400*31 {
				return p.errAt(n, vcol, "invalid timeout value %q (want 1 to 2678400 seconds)", val)
			}
			c.svc.Timeout = uint32(t)
		}
	case "netmask":
		if c.svc.Family == afInet6 {
			m, err := strconv.Atoi(val)
			if err != nil || m < 1 || m > 128 {
				return p.errAt(n, vcol, "illegal ipv6 netmask %q (want a prefix length from 1 to 128)", val)
			}
			c.svc.Netmask = uint32(m)
		} else {
			a, err := netip.ParseAddr(val)
			if err != nil || !a.Is4() {
				return p.errAt(n, vcol, "illegal virtual server persistent mask %q", val)
			}
			b := a.As4()
			c.svc.Netmask = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		}
	case "real-server":
		a, port, hasPort, err := parseAddrPort(val, c.svc.Protocol)
		if err != nil {
			return p.errAt(n, vcol, "illegal real server address[:port] %q: %v", val, err)
		}
		c.dest.Addr, c.destAF = a, ipvs.FamilyOf(a)
		c.dest.Port = port
		if !hasPort {
			c.dest.Port = c.svc.Port
		}
		c.hasDest = true
	case "masquerading", "ipip", "gatewaying":
		if other, ok := firstSeen(c.seen, o.name, "masquerading", "ipip", "gatewaying"); ok {
			return p.errAt(n, col, "multiple 'forwarding-method' options specified (--%s and --%s)", other, o.name)
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
			return p.errAt(n, vcol, "illegal weight %q (want 0 to 65535)", val)
		}
		c.dest.Weight = int32(w)
	case "u-threshold", "l-threshold":
		x, err := strconv.ParseUint(val, 10, 31)
		if err != nil {
			return p.errAt(n, vcol, "illegal %s %q", o.name, val)
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
			return p.errAt(n, vcol, "illegal tunnel type %q (want ipip, gue or gre)", val)
		}
	case "tun-port":
		x, err := strconv.Atoi(val)
		if err != nil || x < 1 || x > 65535 {
			return p.errAt(n, vcol, "illegal tunnel port %q", val)
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

func firstSeen(seen map[string]int, self string, names ...string) (string, bool) {
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
func (p *parser) check(n int, c *command) error {
	for name, col := range c.seen {
		if !allowed(c.cmd, name) {
			return p.errAt(n, col, "illegal '%s' option with the '%s' command", name, c.cmd)
		}
	}
	if c.cmd == "clear" {
		return nil
	}
	if !c.hasSvc {
		return p.errAt(n, c.cmdCol, "you need to supply the 'service-address' option for the '%s' command", c.cmd)
	}
	if strings.HasSuffix(c.cmd, "-server") && !c.hasDest {
		return p.errAt(n, c.cmdCol, "you need to supply the 'real-server' option for the '%s' command", c.cmd)
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
					return p.errAt(n, c.flagCol, "incompatible scheduler flag %q with scheduler %s", f, sched)
				}
				c.svc.Flags |= ipvs.FlagSched1
			case f == "sh-port" || f == "mh-port":
				if sched != f[:2] {
					return p.errAt(n, c.flagCol, "incompatible scheduler flag %q with scheduler %s", f, sched)
				}
				c.svc.Flags |= ipvs.FlagSched2
			default:
				return p.errAt(n, c.flagCol, "invalid scheduler flag %q (want sh-fallback, sh-port, mh-fallback, mh-port or flag-1..3)", f)
			}
		}
	}
	switch c.cmd {
	case "add-service", "edit-service":
		if c.svc.FWMark == 0 && c.svc.Port == 0 && c.svc.Flags&ipvs.FlagPersistent == 0 {
			return p.errAt(n, c.svcCol, "zero port specified for non-persistent service")
		}
		if c.svc.Flags&ipvs.FlagOnePacket != 0 && c.svc.FWMark == 0 && c.svc.Protocol != ipvs.UDP {
			return p.errAt(n, c.seen["ops"], "one-packet scheduling is only for UDP virtual services")
		}
		if c.svc.Scheduler == "" {
			c.svc.Scheduler = "wlc"
		}
	case "add-server", "edit-server":
		if c.svc.FWMark == 0 && (c.dest.Forward == ipvs.Tunnel || c.dest.Forward == ipvs.Route) {
			c.dest.Port = c.svc.Port
		}
		if c.destAF != c.svc.Family && c.dest.Forward != ipvs.Tunnel {
			return p.errAt(n, c.seen["real-server"], "different address family is allowed only for tunneling servers")
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
			return p.errAt(n, c.seen[tunOpt], "tunnel options conflict with forward method")
		}
		return p.checkTunnel(n, c)
	}
	return nil
}

func (p *parser) checkTunnel(n int, c *command) error {
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
				return p.errAt(n, col, "illegal '%s' option with the 'ipip' tunnel type", o)
			}
		}
	case ipvs.TunGUE:
		if !port {
			return p.errAt(n, c.seen["tun-type"], "you need to supply the 'tun-port' option for the 'gue' tunnel type")
		}
	case ipvs.TunGRE:
		if port {
			return p.errAt(n, c.seen["tun-port"], "illegal 'tun-port' option with the 'gre' tunnel type")
		}
		if col, ok := c.seen["tun-remcsum"]; ok {
			return p.errAt(n, col, "illegal 'tun-remcsum' option with the 'gre' tunnel type")
		}
	}
	if csums > 1 {
		return p.errAt(n, c.seen["tun-type"], "only one of --tun-nocsum, --tun-csum and --tun-remcsum may be given")
	}
	return nil
}

// key normalises a service key for lookups.
func key(s ipvs.Service) ipvs.ServiceKey {
	k := s.ServiceKey
	if k.FWMark != 0 {
		return ipvs.ServiceKey{Family: k.Family, FWMark: k.FWMark}
	}
	return k
}

func (p *parser) find(k ipvs.ServiceKey) int {
	for i := range p.t.Services {
		if key(p.t.Services[i].Service) == k {
			return i
		}
	}
	return -1
}

func (p *parser) apply(n int, c *command) error {
	if c.cmd == "clear" {
		p.t.Services = nil
		return nil
	}
	k := key(c.svc)
	i := p.find(k)
	name := k.String()
	switch c.cmd {
	case "add-service":
		if i >= 0 {
			return p.errAt(n, c.svcCol, "service %s already exists", name)
		}
		c.svc.ServiceKey = k
		p.t.Services = append(p.t.Services, ipvs.ServiceEntry{Service: c.svc})
		return nil
	case "edit-service", "delete-service", "add-server", "edit-server", "delete-server":
		if i < 0 {
			return p.errAt(n, c.svcCol, "no such service %s", name)
		}
	}
	se := &p.t.Services[i]
	switch c.cmd {
	case "edit-service":
		c.svc.ServiceKey = k
		se.Service = c.svc
		return nil
	case "delete-service":
		p.t.Services = append(p.t.Services[:i], p.t.Services[i+1:]...)
		return nil
	}
	j := -1
	for x := range se.Dests {
		if se.Dests[x].DestKey == c.dest.DestKey {
			j = x
		}
	}
	switch c.cmd {
	case "add-server":
		if j >= 0 {
			return p.errAt(n, c.seen["real-server"], "destination %s already exists in %s", c.dest.DestKey, name)
		}
		se.Dests = append(se.Dests, ipvs.DestEntry{Destination: c.dest})
	case "edit-server":
		if j < 0 {
			return p.errAt(n, c.seen["real-server"], "no such destination %s in %s", c.dest.DestKey, name)
		}
		se.Dests[j].Destination = c.dest
	case "delete-server":
		if j < 0 {
			return p.errAt(n, c.seen["real-server"], "no such destination %s in %s", c.dest.DestKey, name)
		}
		se.Dests = append(se.Dests[:j], se.Dests[j+1:]...)
	}
	return nil
}

// wellKnownPort resolves the port names ipvsadm-save prints without -n
// for the services it is commonly used with (from /etc/services).
func wellKnownPort(name string) (uint16, bool) {
	switch name {
	case "ftp":
		return 21, true
	case "ssh":
		return 22, true
	case "smtp":
		return 25, true
	case "domain":
		return 53, true
	case "http", "www":
		return 80, true
	case "pop3":
		return 110, true
	case "ntp":
		return 123, true
	case "imap2", "imap":
		return 143, true
	case "ldap":
		return 389, true
	case "https":
		return 443, true
	case "smtps":
		return 465, true
	case "submission":
		return 587, true
	case "ldaps":
		return 636, true
	case "imaps":
		return 993, true
	case "pop3s":
		return 995, true
	case "mysql":
		return 3306, true
	case "sip":
		return 5060, true
	case "postgresql":
		return 5432, true
	case "http-alt", "webcache":
		return 8080, true
	}
	return 0, false
}

// parseAddrPort reads "1.2.3.4", "1.2.3.4:80", "[2001:db8::1]:80" or a bare
// IPv6 address, as ipvsadm's parse_service does (numeric addresses only).
func parseAddrPort(s string, _ ipvs.Protocol) (netip.Addr, uint16, bool, error) {
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
	if x, ok := wellKnownPort(port); ok {
		return a, x, true, nil
	}
	return netip.Addr{}, 0, false, fmt.Errorf("unknown port %q", port)
}
