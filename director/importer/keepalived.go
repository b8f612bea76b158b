package importer

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// kaNode is one keepalived.conf statement: its words and, for blocks, the
// statements inside the braces.
type kaNode struct {
	words    []string
	line     int
	block    bool
	children []*kaNode
}

func (n *kaNode) keyword() string { return strings.ToLower(n.words[0]) }

// text renders a statement and its block on one line, for comments.
func (n *kaNode) text() string {
	s := strings.Join(n.words, " ")
	if !n.block {
		return s
	}
	var parts []string
	for _, c := range n.children {
		parts = append(parts, c.text())
	}
	if len(parts) == 0 {
		return s + " {}"
	}
	return s + " {" + strings.Join(parts, "; ") + "}"
}

// KeepalivedError is a syntax error in a keepalived.conf.
type KeepalivedError struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *KeepalivedError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

type kaToken struct {
	s         string
	line, col int
	brace     bool // an unquoted { or }
}

// kaLex splits keepalived.conf into words and braces. '#' and '!' start a
// comment outside quotes; double quotes group words.
func kaLex(r io.Reader, name string) ([]kaToken, error) {
	var toks []kaToken
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		i := 0
		for i < len(s) {
			c := s[i]
			switch {
			case c == ' ' || c == '\t' || c == '\r':
				i++
			case c == '#' || c == '!':
				i = len(s)
			case c == '{' || c == '}':
				toks = append(toks, kaToken{s: string(c), line: line, col: i + 1, brace: true})
				i++
			case c == '"':
				end := strings.IndexByte(s[i+1:], '"')
				if end < 0 {
					return nil, &KeepalivedError{name, line, i + 1, "unterminated quoted string"}
				}
				toks = append(toks, kaToken{s: s[i+1 : i+1+end], line: line, col: i + 1})
				i += end + 2
			default:
				start := i
				for i < len(s) && !strings.ContainsRune(" \t\r{}#!\"", rune(s[i])) {
					i++
				}
				toks = append(toks, kaToken{s: s[start:i], line: line, col: start + 1})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return toks, nil
}

// parseKeepalived builds the statement tree. A statement is the words of
// one line; "{" opens a block for the statement before it (on the same
// line or the line above), "}" closes it.
func parseKeepalived(r io.Reader, name string) ([]*kaNode, error) {
	toks, err := kaLex(r, name)
	if err != nil {
		return nil, err
	}
	root := &kaNode{block: true}
	stack := []*kaNode{root}
	opens := []kaToken{}
	var cur *kaNode // statement being collected
	var last *kaNode
	flush := func() {
		if cur != nil {
			top := stack[len(stack)-1]
			top.children = append(top.children, cur)
			last, cur = cur, nil
		}
	}
	for _, t := range toks {
		if cur != nil && t.line != cur.line {
			flush()
		}
		switch {
		case t.brace && t.s == "{":
			flush()
			if last == nil || last.block || stack[len(stack)-1] != parentOf(stack, last) {
				return nil, &KeepalivedError{name, t.line, t.col, "'{' without a statement to open"}
			}
			last.block = true
			stack = append(stack, last)
			opens = append(opens, t)
			last = nil
		case t.brace:
			flush()
			if len(stack) == 1 {
				return nil, &KeepalivedError{name, t.line, t.col, "'}' without a matching '{'"}
			}
			stack = stack[:len(stack)-1]
			opens = opens[:len(opens)-1]
			last = nil
		default:
			if cur == nil {
				cur = &kaNode{line: t.line}
			}
			cur.words = append(cur.words, t.s)
		}
	}
	flush()
	if len(stack) > 1 {
		o := opens[len(opens)-1]
		return nil, &KeepalivedError{name, o.line, o.col, fmt.Sprintf("'{' of %q is never closed", stack[len(stack)-1].words[0])}
	}
	return root.children, nil
}

// parentOf reports the block that holds n: the top of the stack when n
// was its last statement.
func parentOf(stack []*kaNode, n *kaNode) *kaNode {
	top := stack[len(stack)-1]
	if len(top.children) > 0 && top.children[len(top.children)-1] == n {
		return top
	}
	return nil
}

// FromKeepalived reads a keepalived.conf named name and returns a
// director.yaml with its virtual servers. Health checkers, sorry servers,
// VRRP and everything else the director does not do yet are kept as
// comments.
func FromKeepalived(r io.Reader, name string) ([]byte, error) {
	nodes, err := parseKeepalived(r, name)
	if err != nil {
		return nil, fmt.Errorf("import keepalived configuration: %w", err)
	}
	d := &docOut{header: []string{
		fmt.Sprintf("director.yaml imported from the keepalived configuration %s.", name),
		"Review it before use; anything that could not be mapped is listed in comments.",
	}}
	groups := map[string]*kaNode{}
	for _, n := range nodes {
		if n.keyword() == "virtual_server_group" && len(n.words) >= 2 {
			groups[n.words[1]] = n
		}
	}
	for _, n := range nodes {
		switch n.keyword() {
		case "virtual_server":
			vs, err := kaVirtualServer(n, groups, name)
			if err != nil {
				return nil, fmt.Errorf("import keepalived configuration: %w", err)
			}
			d.services = append(d.services, vs...)
		case "virtual_server_group":
			// Expanded where a virtual_server uses it.
		case "include":
			d.trailer = append(d.trailer, fmt.Sprintf("line %d: %s (included files are not followed: import them separately)", n.line, n.text()))
		case "vrrp_instance", "vrrp_sync_group", "vrrp_script", "vrrp_track_process":
			d.trailer = append(d.trailer, fmt.Sprintf("line %d: %s %s (VRRP is not run by lvs-node)", n.line, n.keyword(), strings.Join(n.words[1:], " ")))
		default:
			d.trailer = append(d.trailer, fmt.Sprintf("line %d: %s (not mapped)", n.line, summarize(n)))
		}
	}
	return d.render(), nil
}

// summarize shortens a block for the trailer.
func summarize(n *kaNode) string {
	t := n.text()
	if len(t) > 160 {
		t = t[:157] + "..."
	}
	return t
}

func kaErr(file string, n *kaNode, format string, args ...any) error {
	return &KeepalivedError{file, n.line, 1, fmt.Sprintf(format, args...)}
}

// kaTarget is one address the virtual server (or its group) stands for.
type kaTarget struct {
	vip    netip.Addr
	port   uint16
	fwmark uint32
}

func kaVirtualServer(n *kaNode, groups map[string]*kaNode, file string) ([]vsOut, error) {
	base := vsOut{scheduler: "wlc", forwarding: "nat", protocol: "tcp"}
	var targets []kaTarget
	var comments []string
	groupName := ""
	switch {
	case len(n.words) == 3 && strings.EqualFold(n.words[1], "fwmark"):
		m, err := strconv.ParseUint(n.words[2], 10, 32)
		if err != nil || m == 0 {
			return nil, kaErr(file, n, "virtual_server fwmark: want a mark from 1 to 4294967295, got %q", n.words[2])
		}
		targets = append(targets, kaTarget{fwmark: uint32(m)})
	case len(n.words) == 3 && strings.EqualFold(n.words[1], "group"):
		g, ok := groups[n.words[2]]
		if !ok {
			return nil, kaErr(file, n, "virtual_server group %q: no virtual_server_group of that name", n.words[2])
		}
		groupName = n.words[2]
		var err error
		targets, comments, err = kaGroup(g, file)
		if err != nil {
			return nil, err
		}
	case len(n.words) == 3:
		a, err := netip.ParseAddr(n.words[1])
		if err != nil {
			return nil, kaErr(file, n, "virtual_server: want an IP address, got %q", n.words[1])
		}
		p, err := strconv.ParseUint(n.words[2], 10, 16)
		if err != nil {
			return nil, kaErr(file, n, "virtual_server: want a port, got %q", n.words[2])
		}
		targets = append(targets, kaTarget{vip: a.Unmap(), port: uint16(p)})
	default:
		return nil, kaErr(file, n, "virtual_server: want \"IP PORT\", \"fwmark N\" or \"group NAME\", got %q", strings.Join(n.words[1:], " "))
	}
	base.comments = comments
	persistSet, granularity := false, ""
	var svcTun kaMethodOut
	family6 := false
	var reals []*kaNode
	for _, c := range n.children {
		kw, args := c.keyword(), c.words[1:]
		arg := func() (string, error) {
			if len(args) == 0 {
				return "", kaErr(file, c, "%s needs a value", kw)
			}
			return args[0], nil
		}
		switch kw {
		case "lb_algo", "lvs_sched":
			s, err := arg()
			if err != nil {
				return nil, err
			}
			base.scheduler = strings.ToLower(s)
		case "lb_kind", "lvs_method":
			m, err := kaMethod(args, c, file)
			if err != nil {
				return nil, err
			}
			base.forwarding, svcTun = m.forwarding, m
			if m.note != "" {
				base.comments = append(base.comments, m.note)
			}
		case "protocol":
			s, err := arg()
			if err != nil {
				return nil, err
			}
			switch strings.ToLower(s) {
			case "tcp", "udp", "sctp":
				base.protocol = strings.ToLower(s)
			default:
				return nil, kaErr(file, c, "protocol: want TCP, UDP or SCTP, got %q", s)
			}
		case "persistence_timeout":
			s, err := arg()
			if err != nil {
				return nil, err
			}
			t, err := strconv.ParseUint(s, 10, 32)
			if err != nil || t == 0 {
				return nil, kaErr(file, c, "persistence_timeout: want seconds, got %q", s)
			}
			base.persistent, base.timeout, persistSet = true, uint32(t), true
		case "persistence_granularity":
			s, err := arg()
			if err != nil {
				return nil, err
			}
			granularity = s
		case "ops":
			base.onePacket = true
		case "sh-port", "sh-fallback", "mh-port", "mh-fallback":
			base.schedFlags = append(base.schedFlags, kw)
		case "ip_family":
			if len(args) > 0 && strings.EqualFold(args[0], "inet6") {
				family6 = true
			}
		case "real_server":
			reals = append(reals, c)
		case "delay_loop", "connect_timeout", "retry", "delay_before_retry", "warmup", "alpha", "omega",
			"quorum", "quorum_up", "quorum_down", "hysteresis", "ha_suspend", "virtualhost", "smtp_alert",
			"inhibit_on_failure":
			base.comments = append(base.comments, fmt.Sprintf("%s (health checking is not mapped yet)", c.text()))
		case "sorry_server", "sorry_server_inhibit", "sorry_server_lvs_method":
			base.comments = append(base.comments, fmt.Sprintf("%s (sorry server not mapped yet)", c.text()))
		default:
			base.comments = append(base.comments, fmt.Sprintf("%s (not mapped)", c.text()))
		}
	}
	if granularity != "" {
		if persistSet {
			base.netmask = granularity
		} else {
			base.comments = append(base.comments, fmt.Sprintf("persistence_granularity %s without persistence_timeout (ignored, as keepalived does)", granularity))
		}
	}
	if base.onePacket && base.protocol != "udp" && targets[0].fwmark == 0 {
		base.comments = append(base.comments, "ops (one-packet scheduling) applies to UDP only: dropped")
		base.onePacket = false
	}
	var flags []string
	for _, f := range base.schedFlags {
		if strings.HasPrefix(f, base.scheduler+"-") {
			flags = append(flags, f)
		} else {
			base.comments = append(base.comments, fmt.Sprintf("scheduler flag %s does not apply to scheduler %s: dropped", f, base.scheduler))
		}
	}
	base.schedFlags = flags

	var out []vsOut
	for _, t := range targets {
		v := base
		v.comments = append([]string(nil), base.comments...)
		if groupName != "" {
			v.comments = append(v.comments, fmt.Sprintf("from virtual_server group %s (line %d)", groupName, n.line))
		}
		if t.fwmark != 0 {
			v.fwmark, v.family6, v.protocol = t.fwmark, family6, ""
		} else {
			v.vip, v.port = t.vip, t.port
		}
		six := v.family6 || v.vip.Is6()
		if v.persistent && v.netmask == "" {
			if six {
				v.netmask = "128"
			} else {
				v.netmask = "255.255.255.255"
			}
		}
		for _, rn := range reals {
			rs, skip, err := kaRealServer(rn, &v, six, svcTun, file)
			if err != nil {
				return nil, err
			}
			if skip != "" {
				v.comments = append(v.comments, skip)
				continue
			}
			v.real = append(v.real, rs)
		}
		out = append(out, v)
	}
	return out, nil
}

// kaMethodOut is a parsed lvs_method / lb_kind.
type kaMethodOut struct {
	forwarding string
	tunType    string
	tunPort    uint16
	note       string
}

// kaMethod reads "NAT", "DR", "TUN [type ipip|gue|gre] [port N]
// [nocsum|csum|remcsum]".
func kaMethod(args []string, c *kaNode, file string) (kaMethodOut, error) {
	var m kaMethodOut
	if len(args) == 0 {
		return m, kaErr(file, c, "%s needs NAT, DR or TUN", c.keyword())
	}
	switch strings.ToUpper(args[0]) {
	case "NAT":
		m.forwarding = "nat"
	case "DR":
		m.forwarding = "dr"
	case "TUN":
		m.forwarding = "tun"
	default:
		return m, kaErr(file, c, "%s: want NAT, DR or TUN, got %q", c.keyword(), args[0])
	}
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		switch strings.ToLower(rest[i]) {
		case "type":
			if i+1 >= len(rest) {
				return m, kaErr(file, c, "%s: type needs ipip, gue or gre", c.keyword())
			}
			i++
			switch t := strings.ToLower(rest[i]); t {
			case "ipip", "gue", "gre":
				m.tunType = t
			default:
				return m, kaErr(file, c, "%s: unknown tunnel type %q (want ipip, gue or gre)", c.keyword(), rest[i])
			}
		case "port":
			if i+1 >= len(rest) {
				return m, kaErr(file, c, "%s: port needs a number", c.keyword())
			}
			i++
			p, err := strconv.ParseUint(rest[i], 10, 16)
			if err != nil || p == 0 {
				return m, kaErr(file, c, "%s: bad tunnel port %q", c.keyword(), rest[i])
			}
			m.tunPort = uint16(p)
		case "nocsum":
		case "csum", "remcsum":
			m.note = fmt.Sprintf("%s: tunnel checksum option %s (not mapped yet)", c.text(), rest[i])
		default:
			return m, kaErr(file, c, "%s: unexpected %q", c.keyword(), rest[i])
		}
	}
	if m.tunType != "" && m.forwarding != "tun" {
		return m, kaErr(file, c, "%s: tunnel options apply to TUN only", c.keyword())
	}
	return m, nil
}

// maxGroupRange bounds the addresses one virtual_server_group range may
// expand to.
const maxGroupRange = 256

// kaGroup expands a virtual_server_group: "IP PORT", "IP-LAST PORT"
// (a range in the last byte, or the last group of an IPv6 address) and
// "fwmark N".
func kaGroup(g *kaNode, file string) ([]kaTarget, []string, error) {
	var out []kaTarget
	var notes []string
	for _, c := range g.children {
		if strings.EqualFold(c.words[0], "fwmark") {
			if len(c.words) != 2 {
				return nil, nil, kaErr(file, c, "virtual_server_group %s: want \"fwmark N\"", g.words[1])
			}
			m, err := strconv.ParseUint(c.words[1], 10, 32)
			if err != nil || m == 0 {
				return nil, nil, kaErr(file, c, "virtual_server_group %s: bad fwmark %q", g.words[1], c.words[1])
			}
			out = append(out, kaTarget{fwmark: uint32(m)})
			continue
		}
		if len(c.words) != 2 {
			if len(c.words) == 1 {
				notes = append(notes, fmt.Sprintf("virtual_server_group %s entry %q without a port (not mapped: a port-0 service needs persistence)", g.words[1], c.words[0]))
				continue
			}
			return nil, nil, kaErr(file, c, "virtual_server_group %s: want \"IP PORT\", got %q", g.words[1], c.text())
		}
		p, err := strconv.ParseUint(c.words[1], 10, 16)
		if err != nil {
			return nil, nil, kaErr(file, c, "virtual_server_group %s: bad port %q", g.words[1], c.words[1])
		}
		addrs, err := kaRange(c.words[0])
		if err != nil {
			return nil, nil, kaErr(file, c, "virtual_server_group %s: %v", g.words[1], err)
		}
		for _, a := range addrs {
			out = append(out, kaTarget{vip: a, port: uint16(p)})
		}
	}
	if len(out) == 0 {
		return nil, nil, kaErr(file, g, "virtual_server_group %s has no usable entries", g.words[1])
	}
	return out, notes, nil
}

// kaRange expands "10.0.0.1-10" or "2001:db8::1-1f".
func kaRange(s string) ([]netip.Addr, error) {
	first, last, isRange := s, "", false
	if i := strings.LastIndexByte(s, '-'); i > 0 {
		first, last, isRange = s[:i], s[i+1:], true
	}
	a, err := netip.ParseAddr(first)
	if err != nil {
		return nil, fmt.Errorf("want an IP address or range, got %q", s)
	}
	a = a.Unmap()
	if !isRange {
		return []netip.Addr{a}, nil
	}
	base := 10
	if a.Is6() {
		base = 16
	}
	end, err := strconv.ParseUint(last, base, 16)
	if err != nil {
		return nil, fmt.Errorf("bad range end in %q", s)
	}
	var cur uint64
	if a.Is4() {
		cur = uint64(a.As4()[3])
		if end > 255 {
			return nil, fmt.Errorf("range end %d beyond 255 in %q", end, s)
		}
	} else {
		b := a.As16()
		cur = uint64(b[14])<<8 | uint64(b[15])
	}
	if end < cur {
		return nil, fmt.Errorf("range %q ends before it starts", s)
	}
	if end-cur+1 > maxGroupRange {
		return nil, fmt.Errorf("range %q holds more than %d addresses", s, maxGroupRange)
	}
	var out []netip.Addr
	for x := a; ; x = x.Next() {
		out = append(out, x)
		if len(out) == int(end-cur+1) {
			break
		}
	}
	return out, nil
}

// kaRealServer maps a real_server block. A non-empty skip says why it was
// left out (and is written as a comment on the service).
func kaRealServer(n *kaNode, v *vsOut, six bool, svcTun kaMethodOut, file string) (rsOut, string, error) {
	var rs rsOut
	if len(n.words) < 2 || len(n.words) > 3 {
		return rs, "", kaErr(file, n, "real_server: want \"IP [PORT]\", got %q", strings.Join(n.words[1:], " "))
	}
	a, err := netip.ParseAddr(n.words[1])
	if err != nil {
		return rs, "", kaErr(file, n, "real_server: want an IP address, got %q", n.words[1])
	}
	rs.addr = a.Unmap()
	port, hasPort := uint16(0), false
	if len(n.words) == 3 {
		p, err := strconv.ParseUint(n.words[2], 10, 16)
		if err != nil {
			return rs, "", kaErr(file, n, "real_server: want a port, got %q", n.words[2])
		}
		port, hasPort = uint16(p), true
	}
	rs.weight = 1
	rs.forwarding = v.forwarding
	tun := svcTun
	for _, c := range n.children {
		kw, args := c.keyword(), c.words[1:]
		switch {
		case kw == "weight":
			if len(args) != 1 {
				return rs, "", kaErr(file, c, "weight needs one value")
			}
			w, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || w < 0 || w > 65535 {
				return rs, "", kaErr(file, c, "weight: want 0 to 65535, got %q", args[0])
			}
			rs.weight = w
		case kw == "uthreshold" || kw == "lthreshold":
			if len(args) != 1 {
				return rs, "", kaErr(file, c, "%s needs one value", kw)
			}
			x, err := strconv.ParseUint(args[0], 10, 32)
			if err != nil {
				return rs, "", kaErr(file, c, "%s: want a number, got %q", kw, args[0])
			}
			if kw == "uthreshold" {
				rs.upper = uint32(x)
			} else {
				rs.lower = uint32(x)
			}
		case kw == "lb_kind" || kw == "lvs_method":
			m, err := kaMethod(args, c, file)
			if err != nil {
				return rs, "", err
			}
			rs.forwarding, tun = m.forwarding, m
			if m.note != "" {
				rs.comments = append(rs.comments, m.note)
			}
		case strings.HasSuffix(kw, "_check") || kw == "http_get" || kw == "ssl_get":
			rs.comments = append(rs.comments, fmt.Sprintf("health check %s (not mapped yet)", c.text()))
		case kw == "inhibit_on_failure":
			rs.comments = append(rs.comments, "inhibit_on_failure (failed servers get weight 0; health checking is not mapped yet)")
		default:
			rs.comments = append(rs.comments, fmt.Sprintf("%s (not mapped)", c.text()))
		}
	}
	if rs.forwarding == "tun" {
		rs.tunType, rs.tunPort = tun.tunType, tun.tunPort
		if rs.tunType == "gue" && rs.tunPort == 0 {
			return rs, "", kaErr(file, n, "real_server %s: a gue tunnel needs a port", n.words[1])
		}
	}
	if rs.addr.Is6() != six {
		return rs, fmt.Sprintf("real_server %s (line %d) not mapped: the director does not mix address families in one service", strings.Join(n.words[1:], " "), n.line), nil
	}
	switch {
	case v.fwmark != 0 && hasPort && port != 0 && rs.forwarding != "nat":
		rs.comments = append(rs.comments, fmt.Sprintf("port %d dropped: a %s real server of a firewall-mark service keeps the client's port", port, rs.forwarding))
	case v.fwmark != 0:
		rs.port, rs.hasPort = port, hasPort && port != 0
	case !hasPort:
		rs.port, rs.hasPort = v.port, true
	case port != v.port && rs.forwarding != "nat":
		rs.port, rs.hasPort = v.port, true
		rs.comments = append(rs.comments, fmt.Sprintf("port %d replaced by the service port %d: %s does not map ports (the kernel ignores it too)", port, v.port, rs.forwarding))
	default:
		rs.port, rs.hasPort = port, true
	}
	return rs, "", nil
}
