package importer

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// This file maps virtual_server and virtual_server_group blocks the way
// keepalived 2.2 would program them (keepalived/check/check_parser.c and
// check_data.c: alloc_vs, alloc_rs, alloc_vsg_entry and
// validate_check_config). Keywords are matched case-sensitively, as
// keepalived does; what keepalived ignores is ignored here too and said
// so in a comment.

// FromKeepalived reads a keepalived.conf named name (and the files it
// includes) and returns a director.yaml with its virtual servers. Health
// checkers, sorry servers and quorum are mapped; VRRP and everything
// else the director does not do are kept as comments.
func FromKeepalived(r io.Reader, name string, opts Options) (*Result, error) {
	nodes, notes, err := parseKeepalived(r, name, opts)
	if err != nil {
		return nil, fmt.Errorf("import keepalived configuration: %w", err)
	}
	d := &docOut{header: []string{
		fmt.Sprintf("director.yaml imported from the keepalived configuration %s.", name),
		"Review it before use; anything that could not be mapped is listed in comments.",
	}}
	if opts.ConfigID != "" {
		d.header = append(d.header, fmt.Sprintf("Lines starting @ID were read as keepalived -i %s reads them.", opts.ConfigID))
	}
	m := &kaMapper{groups: map[string]*kaNode{}}
	for _, n := range nodes {
		if n.keyword() == "virtual_server_group" && len(n.words) >= 2 {
			if n.cond != "" {
				return nil, fmt.Errorf("import keepalived configuration: %w", condErr(n))
			}
			m.groups[n.arg(1)] = n
		}
	}
	for _, n := range nodes {
		switch n.keyword() {
		case "virtual_server":
			if n.cond != "" {
				return nil, fmt.Errorf("import keepalived configuration: %w", condErr(n))
			}
			vs, drop, err := m.virtualServer(n)
			if err != nil {
				return nil, fmt.Errorf("import keepalived configuration: %w", err)
			}
			if drop != "" {
				d.trailer = append(d.trailer, drop)
				continue
			}
			d.services = append(d.services, vs...)
		case "virtual_server_group":
			// Expanded where a virtual_server uses it.
		case "vrrp_instance", "vrrp_sync_group", "vrrp_script", "vrrp_track_process", "vrrp_track_file":
			d.trailer = append(d.trailer, fmt.Sprintf("line %d: %s %s (VRRP is not run by lvs-node)", n.line(), n.keyword(), strings.Join(n.args(), " ")))
		default:
			if n.keyword() == "global_defs" {
				d.globalDefs(n)
			}
			d.trailer = append(d.trailer, fmt.Sprintf("line %d: %s (not mapped)", n.line(), summarize(n)))
		}
	}
	d.trailer = append(d.trailer, notes...)
	return d.result(), nil
}

// condErr is the error for a line that depends on keepalived's config id.
func condErr(n *kaNode) error {
	return n.pos().errorf("%s applies only when keepalived runs with that config id (-i): give the importer the director's id (--config-id)", n.cond)
}

// summarize shortens a block for the trailer.
func summarize(n *kaNode) string {
	t := n.text()
	if len(t) > 160 {
		t = t[:157] + "..."
	}
	return t
}

type kaMapper struct {
	groups map[string]*kaNode
}

// kaTarget is one address the virtual server (or its group) stands for.
type kaTarget struct {
	vip    netip.Addr
	port   uint16
	fwmark uint32
	family int // fwmark entries of a group: 4, 6 or 0 (the servers')
}

// kaFwd is a forwarding method with its tunnel options.
type kaFwd struct {
	method  string // nat, dr, tun; "" when not set
	tunType string
	tunPort uint16
	csum    string
}

// kaTimers are the checker settings a real server takes from its virtual
// server unless it sets them itself.
type kaTimers struct {
	delayLoop, connTimeout, delayBeforeRetry, warmup *time.Duration
	retry                                            *uint64
	inhibit, alpha                                   *bool
	virtualhost                                      string
}

// inherit fills what t does not set from parent.
func (t kaTimers) inherit(p kaTimers) kaTimers {
	if t.delayLoop == nil {
		t.delayLoop = p.delayLoop
	}
	if t.connTimeout == nil {
		t.connTimeout = p.connTimeout
	}
	if t.delayBeforeRetry == nil {
		t.delayBeforeRetry = p.delayBeforeRetry
	}
	if t.warmup == nil {
		t.warmup = p.warmup
	}
	if t.retry == nil {
		t.retry = p.retry
	}
	if t.inhibit == nil {
		t.inhibit = p.inhibit
	}
	if t.alpha == nil {
		t.alpha = p.alpha
	}
	return t
}

// kaVS is a virtual_server as keepalived holds it after parsing.
type kaVS struct {
	node        *kaNode
	targets     []kaTarget
	group       string
	af          int // 4, 6 or 0 when not known yet
	sched       string
	schedFlags  []string
	ops         bool
	fwd         kaFwd
	persistence uint32
	pe, peText  string // persistence_engine and its line
	granularity string
	protocol    string
	weight      int64
	timers      kaTimers
	quorum      uint64
	quorumSet   bool
	sorry       *kaSorry
	reals       []*kaRS
	comments    []string
}

type kaSorry struct {
	node *kaNode
	addr netip.Addr
	port uint16
	fwd  kaFwd
}

// kaRS is a real_server.
type kaRS struct {
	node     *kaNode
	addr     netip.Addr
	port     uint16
	weight   *int64
	fwd      kaFwd
	upper    uint32
	lower    uint32
	timers   kaTimers
	checkers []*kaNode
	comments []string
}

// ignored is the comment for a statement keepalived reads but rejects.
func ignored(c *kaNode, why string) string {
	return fmt.Sprintf("%s: keepalived ignores this line (%s)", c.text(), why)
}

func (m *kaMapper) virtualServer(n *kaNode) ([]vsOut, string, error) {
	vs := &kaVS{node: n, weight: 1, quorum: 1}
	if len(n.words) < 2 {
		return nil, "", n.pos().errorf("virtual_server needs an address, \"fwmark N\" or \"group NAME\"")
	}
	switch {
	case n.arg(1) == "group":
		if len(n.words) < 3 {
			return nil, "", n.at(1).errorf("virtual_server group needs a group name")
		}
		g, ok := m.groups[n.arg(2)]
		if !ok {
			return nil, "", n.at(2).errorf("virtual_server group %q: no virtual_server_group of that name", n.arg(2))
		}
		vs.group = n.arg(2)
		targets, notes, err := kaGroup(g)
		if err != nil {
			return nil, "", err
		}
		vs.targets, vs.comments = targets, notes
	case n.arg(1) == "fwmark":
		mark, err := strconv.ParseUint(n.arg(2), 10, 32)
		if err != nil || mark == 0 {
			return nil, "", n.at(2).errorf("virtual_server fwmark: want a mark from 1 to 4294967295, got %q", n.arg(2))
		}
		vs.targets = []kaTarget{{fwmark: uint32(mark)}}
	default:
		a, err := netip.ParseAddr(n.arg(1))
		if err != nil {
			return nil, "", n.at(1).errorf("virtual_server: want an IP address, \"fwmark N\" or \"group NAME\", got %q", n.arg(1))
		}
		// keepalived reads the port as a number; 0 or no port at all is a
		// port-0 service (valid since keepalived 2.0.7).
		port := uint64(0)
		if len(n.words) >= 3 {
			if port, err = strconv.ParseUint(n.arg(2), 10, 16); err != nil {
				return nil, "", n.at(2).errorf("virtual_server: want a port number, got %q", n.arg(2))
			}
		}
		vs.targets = []kaTarget{{vip: a.Unmap(), port: uint16(port)}}
		vs.af = family(a.Unmap())
	}
	if extra := len(n.words) - 3; extra > 0 {
		vs.comments = append(vs.comments, fmt.Sprintf("%q after the virtual server: keepalived reads only the address and port, and so does the import",
			strings.Join(n.args()[2:], " ")))
	}
	for _, c := range n.children {
		if c.cond != "" {
			return nil, "", condErr(c)
		}
		if err := vs.keyword(c); err != nil {
			return nil, "", err
		}
	}
	return vs.finish()
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// keyword applies one statement of a virtual_server block.
func (vs *kaVS) keyword(c *kaNode) error {
	kw := c.keyword()
	switch kw {
	case "lb_algo", "lvs_sched":
		s := c.arg(1)
		if !isKeepalivedScheduler(s) {
			vs.comments = append(vs.comments, ignored(c, "scheduler names are lower case: "+strings.Join(keepalivedSchedulers, " ")))
			return nil
		}
		vs.sched = s
	case "lb_kind", "lvs_method":
		f, note, err := kaMethod(c, vs.fwd)
		if err != nil {
			return err
		}
		if note != "" {
			vs.comments = append(vs.comments, note)
			return nil
		}
		vs.fwd = f
	case "protocol":
		switch strings.ToUpper(c.arg(1)) {
		case "TCP", "UDP", "SCTP":
			vs.protocol = strings.ToLower(c.arg(1))
		default:
			vs.comments = append(vs.comments, ignored(c, "want TCP, UDP or SCTP"))
		}
	case "persistence_timeout":
		if len(c.words) < 2 {
			vs.persistence = 360 // keepalived's IPVS_SVC_PERSISTENT_TIMEOUT
			return nil
		}
		t, err := strconv.ParseUint(c.arg(1), 10, 32)
		if err != nil || t < 1 || t > 2678400 {
			if c.arg(1) == "0" {
				if vs.persistence == 0 {
					vs.comments = append(vs.comments, "persistence_timeout 0: not persistent (keepalived rejects 0 and keeps the service without persistence)")
				} else {
					vs.comments = append(vs.comments, fmt.Sprintf("persistence_timeout 0: keepalived rejects 0 and keeps the %ds set before", vs.persistence))
				}
				return nil
			}
			return c.at(1).errorf("persistence_timeout: want seconds from 1 to 2678400, got %q", c.arg(1))
		}
		vs.persistence = uint32(t)
	case "persistence_granularity":
		vs.granularity = c.arg(1)
		if vs.persistence == 0 {
			// keepalived's pgr_handler makes the service persistent.
			vs.persistence = 360
		}
	case "persistence_engine":
		vs.pe, vs.peText = c.arg(1), c.text()
	case "ops":
		vs.ops = true
	case "sh-port", "sh-fallback", "mh-port", "mh-fallback":
		// keepalived takes these only after the scheduler they belong to.
		if vs.sched != kw[:2] {
			vs.comments = append(vs.comments, ignored(c, fmt.Sprintf("it applies to the %s scheduler and must come after lvs_sched %s", kw[:2], kw[:2])))
			return nil
		}
		vs.schedFlags = append(vs.schedFlags, kw)
	case "flag-1", "flag-2", "flag-3", "hashed":
		vs.comments = append(vs.comments, fmt.Sprintf("%s (scheduler flag not mapped: the director knows sh/mh flags only)", c.text()))
	case "ip_family":
		switch c.arg(1) {
		case "inet", "inet6":
			af := 4
			if c.arg(1) == "inet6" {
				af = 6
			}
			if vs.af != 0 && vs.af != af {
				vs.comments = append(vs.comments, ignored(c, "it conflicts with the address family of the service"))
				return nil
			}
			vs.af = af
		default:
			vs.comments = append(vs.comments, ignored(c, "want inet or inet6"))
		}
	case "weight":
		w, err := strconv.ParseInt(c.arg(1), 10, 64)
		if err != nil || w < 1 || w > 65535 {
			return c.at(1).errorf("weight: want 1 to 65535, got %q", c.arg(1))
		}
		vs.weight = w
	case "delay_loop", "connect_timeout", "delay_before_retry", "warmup", "retry", "inhibit_on_failure", "alpha", "virtualhost":
		return vs.timers.keyword(c)
	case "quorum":
		q, err := strconv.ParseUint(c.arg(1), 10, 32)
		if err != nil || q < 1 {
			return c.at(1).errorf("quorum: want a total weight from 1, got %q", c.arg(1))
		}
		vs.quorum, vs.quorumSet = q, true
	case "hysteresis", "quorum_up", "quorum_down", "omega":
		vs.comments = append(vs.comments, fmt.Sprintf("%s (not mapped: the director has no quorum scripts or hysteresis)", c.text()))
	case "ha_suspend", "smtp_alert", "snmp_name":
		vs.comments = append(vs.comments, fmt.Sprintf("%s (not mapped)", c.text()))
	case "sorry_server":
		a, err := netip.ParseAddr(c.arg(1))
		if err != nil {
			return c.at(1).errorf("sorry_server: want an IP address, got %q", c.arg(1))
		}
		s := &kaSorry{node: c, addr: a.Unmap(), fwd: vs.fwd}
		if len(c.words) >= 3 {
			p, err := strconv.ParseUint(c.arg(2), 10, 16)
			if err != nil {
				return c.at(2).errorf("sorry_server: want a port number, got %q", c.arg(2))
			}
			s.port = uint16(p)
		}
		vs.sorry = s
	case "sorry_server_inhibit":
		vs.comments = append(vs.comments, fmt.Sprintf("%s (not mapped: keepalived keeps the sorry server in the table with weight 0 while it is not used)", c.text()))
	case "sorry_server_lvs_method":
		if vs.sorry == nil {
			vs.comments = append(vs.comments, ignored(c, "it comes before any sorry_server"))
			return nil
		}
		f, note, err := kaMethod(c, vs.sorry.fwd)
		if err != nil {
			return err
		}
		if note != "" {
			vs.comments = append(vs.comments, note)
			return nil
		}
		vs.sorry.fwd = f
	case "real_server":
		rs, err := vs.realServer(c)
		if err != nil {
			return err
		}
		if rs != nil {
			vs.reals = append(vs.reals, rs)
		}
	default:
		vs.comments = append(vs.comments, unknownKeyword(c, vsKeywords))
	}
	return nil
}

// vsKeywords are the keywords keepalived knows in a virtual_server block.
var vsKeywords = []string{"ip_family", "retry", "delay_before_retry", "warmup", "connect_timeout", "delay_loop",
	"inhibit_on_failure", "lb_algo", "lvs_sched", "hashed", "ops", "flag-1", "flag-2", "flag-3", "sh-port",
	"sh-fallback", "mh-port", "mh-fallback", "lb_kind", "lvs_method", "persistence_engine", "persistence_timeout",
	"persistence_granularity", "protocol", "ha_suspend", "smtp_alert", "virtualhost", "snmp_name", "alpha", "omega",
	"quorum_up", "quorum_down", "quorum", "hysteresis", "weight", "sorry_server", "sorry_server_inhibit",
	"sorry_server_lvs_method", "real_server"}

// rsKeywords are the keywords keepalived knows in a real_server block.
var rsKeywords = []string{"weight", "lvs_method", "uthreshold", "lthreshold", "inhibit_on_failure", "notify_up",
	"notify_down", "alpha", "retry", "delay_before_retry", "warmup", "connect_timeout", "delay_loop", "smtp_alert",
	"virtualhost", "snmp_name", "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "DNS_CHECK", "UDP_CHECK",
	"PING_CHECK", "SMTP_CHECK", "FILE_CHECK", "BFD_CHECK", "track_file"}

// unknownKeyword explains a keyword keepalived does not know there; a
// different spelling of a known one is named.
func unknownKeyword(c *kaNode, known []string) string {
	for _, k := range known {
		if strings.EqualFold(k, c.keyword()) {
			return ignored(c, fmt.Sprintf("unknown keyword: keywords are case-sensitive, keepalived knows %q", k))
		}
	}
	if c.keyword() == "lb_kind" {
		return ignored(c, "unknown keyword here: in a real_server keepalived knows only lvs_method")
	}
	return ignored(c, "unknown keyword")
}

var keepalivedSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"}

func isKeepalivedScheduler(s string) bool {
	for _, k := range keepalivedSchedulers {
		if s == k {
			return true
		}
	}
	return false
}

// keyword applies a checker setting shared by virtual and real servers.
func (t *kaTimers) keyword(c *kaNode) error {
	switch kw := c.keyword(); kw {
	case "delay_loop", "connect_timeout", "delay_before_retry", "warmup":
		min := 0.0
		if kw == "delay_loop" || kw == "connect_timeout" {
			min = 1e-6
		}
		d, err := kaTimer(c, 1, min)
		if err != nil {
			return err
		}
		switch kw {
		case "delay_loop":
			t.delayLoop = &d
		case "connect_timeout":
			t.connTimeout = &d
		case "delay_before_retry":
			t.delayBeforeRetry = &d
		default:
			t.warmup = &d
		}
	case "retry", "nb_get_retry":
		r, err := strconv.ParseUint(c.arg(1), 10, 32)
		if err != nil || (r < 1 && kw == "retry") {
			return c.at(1).errorf("%s: want a number of retries, got %q", kw, c.arg(1))
		}
		t.retry = &r
	case "inhibit_on_failure", "alpha":
		b := true
		if len(c.words) >= 2 {
			switch c.arg(1) {
			case "true", "on", "yes":
			case "false", "off", "no":
				b = false
			default:
				return c.at(1).errorf("%s: want true or false, got %q", kw, c.arg(1))
			}
		}
		if kw == "alpha" {
			t.alpha = &b
		} else {
			t.inhibit = &b
		}
	case "virtualhost":
		t.virtualhost = c.arg(1)
	}
	return nil
}

// kaTimer reads a keepalived timer: seconds, with up to six decimals.
func kaTimer(c *kaNode, i int, min float64) (time.Duration, error) {
	f, err := strconv.ParseFloat(c.arg(i), 64)
	if err != nil || f < min || f > 1e9 || strings.ContainsAny(c.arg(i), "eExXnN") {
		return 0, c.at(i).errorf("%s: want seconds, got %q", c.keyword(), c.arg(i))
	}
	return time.Duration(f*1e6+0.5) * time.Microsecond, nil
}

// kaMethod reads "NAT", "DR", "TUN [type ipip|gue|gre] [port N]
// [nocsum|csum|remcsum]" as keepalived's svr_forwarding_handler does:
// case-sensitively. A method keepalived rejects leaves prev in place and
// returns the comment saying so.
func kaMethod(c *kaNode, prev kaFwd) (kaFwd, string, error) {
	var f kaFwd
	switch c.arg(1) {
	case "NAT":
		f.method = "nat"
	case "DR":
		f.method = "dr"
	case "TUN":
		f.method, f.tunType = "tun", "ipip"
	default:
		fallback := "the virtual server's method, NAT when none is set"
		if prev.method != "" {
			fallback = "the method set before, " + strings.ToUpper(prev.method)
		}
		why := "want NAT, DR or TUN"
		if u := strings.ToUpper(c.arg(1)); u == "NAT" || u == "DR" || u == "TUN" {
			why = fmt.Sprintf("keepalived reads only upper-case %s", u)
		}
		return prev, ignored(c, why) + "; what keepalived runs uses " + fallback, nil
	}
	for i := 2; i < len(c.words); i++ {
		switch c.arg(i) {
		case "type":
			i++
			switch c.arg(i) {
			case "ipip", "gue", "gre":
				f.tunType = c.arg(i)
			default:
				return prev, ignored(c, fmt.Sprintf("unknown tunnel type %q", c.arg(i))), nil
			}
		case "port":
			i++
			p, err := strconv.ParseUint(c.arg(i), 10, 16)
			if err != nil || p == 0 {
				return prev, "", c.at(i).errorf("%s: bad tunnel port %q", c.keyword(), c.arg(i))
			}
			f.tunPort = uint16(p)
		case "nocsum":
			f.csum = ""
		case "csum", "remcsum":
			f.csum = c.arg(i)
		default:
			return prev, ignored(c, fmt.Sprintf("invalid tunnel option %q", c.arg(i))), nil
		}
	}
	if (f.tunType == "gue") != (f.tunPort != 0) {
		return prev, ignored(c, "gue tunnels require a port, other tunnels cannot have one"), nil
	}
	if f.tunType == "ipip" && f.csum != "" || f.tunType == "gre" && f.csum == "remcsum" {
		return prev, ignored(c, fmt.Sprintf("%s tunnels do not support %s", f.tunType, f.csum)), nil
	}
	return f, "", nil
}

// realServer reads a real_server block. It returns nil for a server
// keepalived skips, with the reason on the service.
func (vs *kaVS) realServer(n *kaNode) (*kaRS, error) {
	a, err := netip.ParseAddr(n.arg(1))
	if err != nil {
		return nil, n.at(1).errorf("real_server: want an IP address, got %q", n.arg(1))
	}
	rs := &kaRS{node: n, addr: a.Unmap(), fwd: vs.fwd}
	if len(n.words) >= 3 {
		p, err := strconv.ParseUint(n.arg(2), 10, 16)
		if err != nil {
			return nil, n.at(2).errorf("real_server: want a port number, got %q", n.arg(2))
		}
		rs.port = uint16(p)
	}
	if len(n.words) > 3 {
		rs.comments = append(rs.comments, fmt.Sprintf("%q after the real server: keepalived ignores it", strings.Join(n.args()[2:], " ")))
	}
	for _, c := range n.children {
		if c.cond != "" {
			return nil, condErr(c)
		}
		switch kw := c.keyword(); kw {
		case "weight":
			w, err := strconv.ParseInt(c.arg(1), 10, 64)
			if err != nil || w < 0 || w > 65535 {
				return nil, c.at(1).errorf("weight: want 0 to 65535, got %q", c.arg(1))
			}
			rs.weight = &w
		case "lvs_method":
			f, note, err := kaMethod(c, rs.fwd)
			if err != nil {
				return nil, err
			}
			if note != "" {
				rs.comments = append(rs.comments, note)
				continue
			}
			rs.fwd = f
		case "uthreshold", "lthreshold":
			x, err := strconv.ParseUint(c.arg(1), 10, 32)
			if err != nil {
				return nil, c.at(1).errorf("%s: want a number, got %q", kw, c.arg(1))
			}
			if kw == "uthreshold" {
				rs.upper = uint32(x)
			} else {
				rs.lower = uint32(x)
			}
		case "delay_loop", "connect_timeout", "delay_before_retry", "warmup", "retry", "inhibit_on_failure", "alpha", "virtualhost":
			if err := rs.timers.keyword(c); err != nil {
				return nil, err
			}
		case "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "SMTP_CHECK", "FILE_CHECK", "BFD_CHECK":
			rs.checkers = append(rs.checkers, c)
		case "notify_up", "notify_down", "smtp_alert", "snmp_name", "track_file":
			rs.comments = append(rs.comments, fmt.Sprintf("%s (not mapped)", c.text()))
		default:
			rs.comments = append(rs.comments, unknownKeyword(c, rsKeywords))
		}
	}
	// keepalived's rs_end_handler: without tunnelling, the families must match.
	if rs.fwd.method != "tun" {
		switch {
		case vs.af == 0:
			vs.af = family(rs.addr)
		case vs.af != family(rs.addr):
			vs.comments = append(vs.comments, fmt.Sprintf("real_server %s (line %d): keepalived skips it, its address family differs from the service's",
				strings.Join(n.args(), " "), n.line()))
			return nil, nil
		}
	}
	return rs, nil
}

// kaGroup expands a virtual_server_group as alloc_vsg_entry does: "IP
// [PORT]", "IP-LAST [PORT]" (the last byte, or the last group of an IPv6
// address in hex), "IP-IP [PORT]", "IP/LEN [PORT]", and "fwmark N
// [inet|inet6]".
func kaGroup(g *kaNode) ([]kaTarget, []string, error) {
	var out []kaTarget
	var notes []string
	for _, c := range g.children {
		if c.cond != "" {
			return nil, nil, condErr(c)
		}
		if c.keyword() == "fwmark" {
			m, err := strconv.ParseUint(c.arg(1), 10, 32)
			if err != nil || m == 0 {
				return nil, nil, c.at(1).errorf("virtual_server_group %s: bad fwmark %q", g.arg(1), c.arg(1))
			}
			t := kaTarget{fwmark: uint32(m)}
			switch c.arg(2) {
			case "":
			case "inet":
				t.family = 4
			case "inet6":
				t.family = 6
			default:
				notes = append(notes, ignored(c, fmt.Sprintf("unknown family %q: want inet or inet6", c.arg(2))))
				continue
			}
			out = append(out, t)
			continue
		}
		port := uint64(0)
		if len(c.words) >= 2 {
			p, err := strconv.ParseUint(c.arg(1), 10, 16)
			if err != nil {
				return nil, nil, c.at(1).errorf("virtual_server_group %s: bad port %q", g.arg(1), c.arg(1))
			}
			port = p
		}
		addrs, err := kaRange(c.keyword())
		if err != nil {
			return nil, nil, c.pos().errorf("virtual_server_group %s: %v", g.arg(1), err)
		}
		for _, a := range addrs {
			out = append(out, kaTarget{vip: a, port: uint16(port)})
		}
	}
	if len(out) == 0 {
		return nil, nil, g.pos().errorf("virtual_server_group %s has no usable entries (keepalived removes it)", g.arg(1))
	}
	return out, notes, nil
}

// maxGroupRange bounds the addresses one virtual_server_group range may
// expand to.
const maxGroupRange = 256

// kaRange expands "10.0.0.1-10", "10.0.0.1-10.0.0.10", "10.0.0.0/29" or
// "2001:db8::1-1f".
func kaRange(s string) ([]netip.Addr, error) {
	if pfx, err := netip.ParsePrefix(s); err == nil {
		if pfx.Masked() != pfx {
			return nil, fmt.Errorf("address mask bits not empty in %q", s)
		}
		bits := pfx.Addr().BitLen() - pfx.Bits()
		if bits > 8 {
			return nil, fmt.Errorf("%q holds more than %d addresses", s, maxGroupRange)
		}
		var out []netip.Addr
		a := pfx.Addr().Unmap()
		for i := 0; i < 1<<bits; i++ {
			out = append(out, a)
			a = a.Next()
		}
		return out, nil
	}
	first, last, isRange := strings.Cut(s, "-")
	a, err := netip.ParseAddr(first)
	if err != nil {
		return nil, fmt.Errorf("want an IP address, range or prefix, got %q", s)
	}
	a = a.Unmap()
	if !isRange {
		return []netip.Addr{a}, nil
	}
	var end netip.Addr
	if b, err := netip.ParseAddr(last); err == nil {
		end = b.Unmap()
		if end.Is4() != a.Is4() {
			return nil, fmt.Errorf("range %q mixes address families", s)
		}
	} else {
		base, max := 10, uint64(255)
		if a.Is6() {
			base, max = 16, 0xffff
		}
		x, err := strconv.ParseUint(last, base, 32)
		if err != nil || x > max {
			return nil, fmt.Errorf("bad range end in %q", s)
		}
		if a.Is4() {
			b := a.As4()
			if x <= uint64(b[3]) {
				return nil, fmt.Errorf("range %q does not end after it starts", s)
			}
			b[3] = byte(x)
			end = netip.AddrFrom4(b)
		} else {
			b := a.As16()
			if x <= uint64(b[14])<<8|uint64(b[15]) {
				return nil, fmt.Errorf("range %q does not end after it starts", s)
			}
			b[14], b[15] = byte(x>>8), byte(x)
			end = netip.AddrFrom16(b)
		}
	}
	if end.Less(a) {
		return nil, fmt.Errorf("range %q ends before it starts", s)
	}
	var out []netip.Addr
	for x := a; ; x = x.Next() {
		out = append(out, x)
		if x == end {
			break
		}
		if len(out) >= maxGroupRange {
			return nil, fmt.Errorf("range %q holds more than %d addresses", s, maxGroupRange)
		}
	}
	return out, nil
}

// finish applies keepalived's validate_check_config and builds the
// services.
func (vs *kaVS) finish() ([]vsOut, string, error) {
	n := vs.node
	if len(vs.reals) == 0 {
		inputReals := 0
		for _, c := range n.children {
			if c.keyword() == "real_server" {
				inputReals++
			}
		}
		if inputReals == 0 {
			return nil, fmt.Sprintf("line %d: %s (keepalived ignores a virtual server without real servers)", n.line(), summarize(n)), nil
		}
		return nil, fmt.Sprintf("line %d: %s (keepalived skips all %d of its real servers, and then the virtual server)", n.line(), summarize(n), inputReals), nil
	}
	hasAddr := false
	for _, t := range vs.targets {
		hasAddr = hasAddr || t.fwmark == 0
	}
	base := vsOut{scheduler: vs.sched, comments: vs.comments}
	if hasAddr {
		if vs.protocol == "" {
			base.comments = append(base.comments, "no protocol: keepalived 2.2 defaults to UDP (it says so when it starts)")
			vs.protocol = "udp"
		}
		if vs.ops && vs.protocol != "udp" {
			base.comments = append(base.comments, "ops: keepalived resets one-packet scheduling on a service that is not UDP")
			vs.ops = false
		}
	}
	if !hasAddr && vs.protocol != "" {
		base.comments = append(base.comments, fmt.Sprintf("protocol %s: keepalived ignores the protocol of a firewall-mark service", vs.protocol))
	}
	if vs.persistence == 0 {
		for _, t := range vs.targets {
			if t.fwmark == 0 && t.port == 0 {
				base.comments = append(base.comments, "port 0: keepalived makes a port-0 service persistent (360s), as the kernel requires")
				vs.persistence = 360
				break
			}
		}
	}
	if base.scheduler == "" {
		base.scheduler = "wlc"
	}
	base.schedFlags = vs.schedFlags
	if vs.fwd.method == "" {
		vs.fwd = kaFwd{method: "nat"}
		base.comments = append(base.comments, "no lvs_method: keepalived defaults to NAT")
	}
	base.forwarding = vs.fwd.method
	if vs.persistence != 0 {
		base.persistent, base.timeout = true, vs.persistence
	}

	// Duplicate real servers: keepalived removes the second.
	var reals []*kaRS
	weightSum := uint64(0)
	for _, rs := range vs.reals {
		dup := false
		for _, o := range reals {
			if o.addr == rs.addr && o.port == rs.port {
				dup = true
			}
		}
		if dup {
			base.comments = append(base.comments, fmt.Sprintf("real_server %s (line %d): keepalived removes this duplicate", strings.Join(rs.node.args(), " "), rs.node.line()))
			continue
		}
		if rs.weight == nil {
			w := vs.weight
			rs.weight = &w
		}
		if rs.fwd.method == "" {
			rs.fwd = vs.fwd
		}
		weightSum += uint64(*rs.weight)
		reals = append(reals, rs)
	}
	vs.reals = reals

	var out []vsOut
	for _, t := range vs.targets {
		v := base
		v.comments = append([]string(nil), base.comments...)
		if vs.group != "" {
			v.info = append(v.info, fmt.Sprintf("from virtual_server group %s (line %d)", vs.group, n.line()))
		}
		if t.fwmark != 0 {
			v.fwmark = t.fwmark
			af := t.family
			if af == 0 {
				af = vs.af
			}
			v.family6 = af == 6
		} else {
			v.vip, v.port, v.protocol = t.vip, t.port, vs.protocol
			v.onePacket = vs.ops
		}
		six := v.family6 || v.vip.Is6()
		if v.persistent {
			v.netmask = vs.netmask(six)
		}
		if vs.group != "" && vs.granularity != "" {
			// keepalived 2.2.7 programs a group's services with the
			// default mask (seen in the lab: -M is missing from the
			// table, for fwmark and address entries alike).
			v.netmask = (&kaVS{}).netmask(six)
			v.comments = append(v.comments, fmt.Sprintf("persistence_granularity %s (not mapped: keepalived ignores it in a virtual_server group and uses %s)", vs.granularity, v.netmask))
		}
		if vs.pe != "" {
			v.setPE(vs.pe, vs.peText)
		}
		for _, rs := range vs.reals {
			r, skip := rs.out(vs, &v, six)
			if skip != "" {
				v.comments = append(v.comments, skip)
				continue
			}
			v.real = append(v.real, r)
		}
		if len(v.real) == 0 {
			return nil, "", n.pos().errorf("virtual_server: none of its %d real servers could be imported (see the reasons above): refusing to write an empty service", len(vs.reals))
		}
		vs.checks(&v)
		if vs.sorry != nil {
			vs.sorryOut(&v, six)
		}
		if vs.quorumSet {
			vs.quorumOut(&v, weightSum)
		}
		out = append(out, v)
	}
	return out, "", nil
}

// netmask is the persistence granularity as the director writes it.
func (vs *kaVS) netmask(six bool) string {
	g := vs.granularity
	switch {
	case g == "" && six:
		return "128"
	case g == "":
		return "255.255.255.255"
	}
	return g
}

// out is the real server as programmed for the service v, as keepalived's
// validate_check_config fixes ports up.
func (rs *kaRS) out(vs *kaVS, v *vsOut, six bool) (rsOut, string) {
	r := rsOut{addr: rs.addr, weight: *rs.weight, forwarding: rs.fwd.method, upper: rs.upper, lower: rs.lower,
		comments: append([]string(nil), rs.comments...)}
	if rs.fwd.method == "tun" {
		r.tunType, r.tunPort = rs.fwd.tunType, rs.fwd.tunPort
		if rs.fwd.csum != "" {
			r.comments = append(r.comments, fmt.Sprintf("tunnel checksum option %s (not mapped yet)", rs.fwd.csum))
		}
	}
	if rs.addr.Is6() != six && rs.fwd.method != "tun" {
		return r, fmt.Sprintf("real_server %s (line %d) not mapped: only tun real servers may be of the other address family",
			strings.Join(rs.node.args(), " "), rs.node.line())
	}
	switch {
	case v.fwmark != 0 && rs.fwd.method != "nat":
		if rs.port != 0 {
			r.comments = append(r.comments, fmt.Sprintf("port %d cleared: keepalived drops the port of a %s real server of a firewall-mark service", rs.port, rs.fwd.method))
		}
	case v.fwmark != 0:
		r.port, r.hasPort = rs.port, rs.port != 0
	case rs.port == 0:
		r.port, r.hasPort = v.port, true
	case rs.port != v.port && rs.fwd.method != "nat":
		r.port, r.hasPort = v.port, true
		r.comments = append(r.comments, fmt.Sprintf("port %d reset to the service port %d: keepalived does so for %s (the kernel ignores it too)", rs.port, v.port, rs.fwd.method))
	default:
		r.port, r.hasPort = rs.port, true
	}
	r.check, r.checkNotes = rs.check(vs)
	return r, ""
}

func (vs *kaVS) sorryOut(v *vsOut, six bool) {
	s := vs.sorry
	if s.addr.Is6() != six && s.fwd.method != "tun" {
		v.comments = append(v.comments, fmt.Sprintf("%s: keepalived skips the sorry server, its address family differs from the service's", s.node.text()))
		return
	}
	fwd := s.fwd
	if fwd.method == "" {
		fwd = vs.fwd
	}
	so := &sorryOut{addr: s.addr, forwarding: fwd.method}
	switch {
	case v.fwmark != 0 && fwd.method != "nat":
		if s.port != 0 {
			v.comments = append(v.comments, fmt.Sprintf("sorry server port %d cleared: keepalived does so for a firewall-mark service", s.port))
		}
	case v.fwmark != 0:
		so.port, so.hasPort = s.port, s.port != 0
	case s.port == 0 || fwd.method != "nat" && s.port != v.port:
		if s.port != 0 {
			v.comments = append(v.comments, fmt.Sprintf("sorry server port %d reset to the service port %d: keepalived does so for %s", s.port, v.port, fwd.method))
		}
		so.port, so.hasPort = v.port, true
	default:
		so.port, so.hasPort = s.port, true
	}
	v.sorry = so
}

// quorumOut maps keepalived's quorum, a minimum total weight of the live
// real servers, to a number of servers when every server has the same
// weight.
func (vs *kaVS) quorumOut(v *vsOut, weightSum uint64) {
	q := vs.quorum
	if q > weightSum {
		v.comments = append(v.comments, fmt.Sprintf("quorum %d exceeds the total weight %d: keepalived lowers it to %d", q, weightSum, weightSum))
		q = weightSum
	}
	w := int64(-1)
	for _, r := range vs.reals {
		if w == -1 {
			w = *r.weight
		} else if w != *r.weight {
			w = -2
		}
	}
	if w <= 0 {
		v.comments = append(v.comments, fmt.Sprintf("quorum %d (not mapped: keepalived counts the weight of live servers, and the weights here differ)", vs.quorum))
		return
	}
	v.quorum = int((q + uint64(w) - 1) / uint64(w))
	v.info = append(v.info, fmt.Sprintf("quorum: keepalived's quorum %d is a total weight; with every server at weight %d that is %d servers up", vs.quorum, w, v.quorum))
}
