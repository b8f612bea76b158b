package importer

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// This file maps keepalived's real-server checkers (check_api.c,
// check_tcp.c, check_http.c, check_misc.c, check_dns.c, check_udp.c,
// check_ping.c) to the director's health_check.
//
// keepalived semantics kept:
//   - a server is marked down after retry+1 failed attempts in a row
//     (retry_it counts the retries after the first failure), so
//     fall = retry + 1; the retries are spaced by delay_before_retry;
//   - a server is marked up again after one success: keepalived has no
//     rise for real-server checks, so rise = 1;
//   - inhibit_on_failure sets the weight to 0 (quiesce) instead of
//     removing the server (remove);
//   - settings come from the checker, else the real server, else the
//     virtual server, else keepalived's defaults: delay_loop 60s,
//     connect_timeout 5s, retry 1 (MISC_CHECK 0, DNS_CHECK 3),
//     delay_before_retry 1s (HTTP_GET/SSL_GET 3s, DNS_CHECK delay_loop).

// checkOut is a health_check mapping, its keys in writing order.
type checkOut struct{ kv [][2]string }

func (c *checkOut) set(k, v string) { c.kv = append(c.kv, [2]string{k, v}) }

func (c *checkOut) key() string {
	var b strings.Builder
	for _, p := range c.kv {
		b.WriteString(p[0] + "=" + p[1] + ";")
	}
	return b.String()
}

// noCheck is the health check of a server keepalived does not check.
func noCheck() *checkOut {
	c := &checkOut{}
	c.set("type", "none")
	return c
}

// fmtDur writes a duration the way director.yaml reads it.
func fmtDur(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	return fmt.Sprintf("%dus", d/time.Microsecond)
}

// checks maps the checkers of the real servers of v: one health_check on
// the service when every server has the same, one per server otherwise.
func (vs *kaVS) checks(v *vsOut) {
	any := false
	for _, r := range v.real {
		if r.check != nil {
			any = true
		}
	}
	if !any {
		for i := range v.real {
			v.real[i].comments = append(v.real[i].comments, v.real[i].checkNotes...)
		}
		return
	}
	same := true
	for i := range v.real {
		if v.real[i].check == nil {
			v.real[i].check = noCheck()
			v.real[i].checkNotes = append(v.real[i].checkNotes, "no checker: keepalived keeps this server in the table whatever happens")
		}
		if v.real[i].check.key() != v.real[0].check.key() {
			same = false
		}
	}
	if !same {
		for i := range v.real {
			v.real[i].comments = append(v.real[i].comments, v.real[i].checkNotes...)
		}
		return
	}
	v.check = v.real[0].check
	seen := map[string]bool{}
	for i := range v.real {
		v.real[i].check = nil
		for _, n := range v.real[i].checkNotes {
			if !seen[n] {
				seen[n] = true
				v.checkNotes = append(v.checkNotes, n)
			}
		}
	}
}

// check maps the first checker of a real server.
func (rs *kaRS) check(vs *kaVS) (*checkOut, []string) {
	if len(rs.checkers) == 0 {
		return nil, nil
	}
	types := map[string]string{"TCP_CHECK": "tcp", "HTTP_GET": "http", "SSL_GET": "https", "MISC_CHECK": "exec",
		"DNS_CHECK": "dns", "UDP_CHECK": "udp", "PING_CHECK": "icmp"}
	var c *kaNode
	var notes []string
	for _, o := range rs.checkers {
		switch {
		case types[o.keyword()] == "":
			notes = append(notes, fmt.Sprintf("%s (not mapped: the director has no such check)", summarize(o)))
		case c == nil:
			c = o
		default:
			notes = append(notes, fmt.Sprintf("%s (not mapped: keepalived wants every checker of a server to pass; the director runs one health check per server)", summarize(o)))
		}
	}
	if c == nil {
		return nil, notes
	}
	typ := types[c.keyword()]
	k := &kaChecker{typ: typ, node: c}
	for _, ch := range c.children {
		if ch.cond != "" {
			return nil, append(notes, condErr(ch).Error())
		}
		k.keyword(ch)
	}
	t := k.timers.inherit(rs.timers.inherit(vs.timers))
	retry := uint64(1)
	switch typ {
	case "exec":
		retry = 0
	case "dns":
		retry = 3
	}
	if t.retry != nil {
		retry = *t.retry
	}
	interval := 60 * time.Second
	if t.delayLoop != nil {
		interval = *t.delayLoop
	}
	timeout := 5 * time.Second
	if t.connTimeout != nil {
		timeout = *t.connTimeout
	}
	if typ == "exec" {
		// misc_timeout, else the virtual server's delay_loop.
		timeout = 60 * time.Second
		if vs.timers.delayLoop != nil {
			timeout = *vs.timers.delayLoop
		}
		if k.miscTimeout != nil {
			timeout = *k.miscTimeout
		}
	}
	dbr := time.Second
	switch typ {
	case "http", "https":
		dbr = 3 * time.Second
	case "dns":
		dbr = interval
	}
	if t.delayBeforeRetry != nil {
		dbr = *t.delayBeforeRetry
	}
	if timeout >= interval {
		// keepalived waits delay_loop after each check ends; the
		// director's interval runs from one check's start to the next
		// and must exceed the timeout.
		notes = append(notes, fmt.Sprintf("interval %s: keepalived waits delay_loop %s after each check, which may take %s; the director's interval runs from the start of one check to the next and must exceed the timeout",
			fmtDur(interval+timeout), fmtDur(interval), fmtDur(timeout)))
		interval += timeout
	}
	out := &checkOut{}
	out.set("type", typ)
	out.set("interval", fmtDur(interval))
	out.set("timeout", fmtDur(timeout))
	out.set("rise", "1")
	out.set("fall", strconv.FormatUint(retry+1, 10))
	onFailure := "remove"
	if t.inhibit != nil && *t.inhibit {
		onFailure = "quiesce"
	}
	out.set("on_failure", onFailure)
	notes = append(notes, "rise 1: keepalived has no rise for real-server checks; one success brings a server back")
	if retry > 0 {
		times := fmt.Sprintf("%d times", retry)
		if retry == 1 {
			times = "once"
		}
		notes = append(notes, fmt.Sprintf("fall %d: keepalived retries %s, %s apart, before it marks a server down (the director checks every %s)",
			retry+1, times, fmtDur(dbr), fmtDur(interval)))
	}
	if t.alpha != nil && *t.alpha {
		notes = append(notes, "alpha: keepalived starts these servers as down until their first check succeeds")
	}
	if t.warmup != nil {
		notes = append(notes, fmt.Sprintf("warmup %s (not mapped: keepalived delays the first check by a random time up to it)", fmtDur(*t.warmup)))
	}
	switch typ {
	case "http", "https":
		k.http(out, rs, vs)
	case "exec":
		if k.command == "" {
			return nil, append(notes, fmt.Sprintf("%s has no misc_path: keepalived does not run it", summarize(c)))
		}
		out.set("command", str(k.command))
		if len(k.cmdArgs) > 0 {
			out.set("args", strList(k.cmdArgs))
		}
	case "dns":
		qtype := "SOA"
		if k.qtype != "" {
			qtype = strings.ToUpper(k.qtype)
		}
		query := "."
		if k.query != "" {
			query = k.query
		}
		out.set("query", str(query))
		out.set("qtype", str(qtype))
		out.set("expect_rcode", "NOERROR")
	case "udp":
		if k.payload != "" {
			out.set("payload", str(k.payload))
		}
		if k.expect != "" {
			out.set("expect", str(k.expect))
		}
	}
	if k.connectIP.IsValid() {
		out.set("address", addr(k.connectIP))
	}
	if k.connectPort != 0 {
		out.set("port", strconv.Itoa(int(k.connectPort)))
	}
	return out, append(notes, k.notes...)
}

// kaChecker holds a checker block's settings.
type kaChecker struct {
	typ         string
	node        *kaNode
	timers      kaTimers
	connectIP   netip.Addr
	connectPort uint16
	notes       []string
	urls        []*kaNode
	vhost       string
	sni         bool
	command     string
	cmdArgs     []string
	miscTimeout *time.Duration
	qtype       string
	query       string
	payload     string
	expect      string
}

func (k *kaChecker) keyword(c *kaNode) {
	not := func(why string) { k.notes = append(k.notes, fmt.Sprintf("%s (not mapped: %s)", c.text(), why)) }
	switch kw := c.keyword(); kw {
	case "delay_loop", "connect_timeout", "delay_before_retry", "warmup", "retry", "alpha":
		if err := k.timers.keyword(c); err != nil {
			k.notes = append(k.notes, ignored(c, err.Error()))
		}
		return
	case "nb_get_retry":
		if k.typ == "http" || k.typ == "https" {
			k.notes = append(k.notes, c.text()+": the old name of retry (keepalived warns that it is deprecated)")
			if err := k.timers.keyword(c); err != nil {
				k.notes = append(k.notes, ignored(c, err.Error()))
			}
			return
		}
	case "connect_ip":
		a, err := netip.ParseAddr(c.arg(1))
		if err != nil {
			k.notes = append(k.notes, ignored(c, "not an IP address"))
			return
		}
		k.connectIP = a.Unmap()
		return
	case "connect_port":
		p, err := strconv.ParseUint(c.arg(1), 10, 16)
		if err != nil || p == 0 {
			k.notes = append(k.notes, ignored(c, "not a port number"))
			return
		}
		k.connectPort = uint16(p)
		return
	case "bindto", "bind_port", "bind_if", "fwmark":
		not("the director checks from its own address, without a mark")
		return
	case "log_all_failures":
		return
	}
	switch k.typ {
	case "http", "https":
		switch c.keyword() {
		case "url":
			k.urls = append(k.urls, c)
			return
		case "virtualhost":
			k.vhost = c.arg(1)
			return
		case "enable_sni":
			k.sni = c.arg(1) == "" || c.arg(1) == "true" || c.arg(1) == "on" || c.arg(1) == "yes"
			return
		case "http_protocol", "fast_recovery":
			not("the director's HTTP check has no such setting")
			return
		}
	case "exec":
		switch c.keyword() {
		case "misc_path":
			words := splitQuoted(c.arg(1))
			if len(words) > 0 {
				k.command, k.cmdArgs = words[0], words[1:]
			}
			if len(c.words) > 2 {
				k.notes = append(k.notes, fmt.Sprintf("%s: keepalived runs only %q, the first word after misc_path; put the command and its arguments in quotes to pass them",
					c.text(), c.arg(1)))
			}
			return
		case "misc_timeout":
			d, err := kaTimer(c, 1, 0)
			if err != nil {
				k.notes = append(k.notes, ignored(c, err.Error()))
				return
			}
			if d > 0 {
				k.miscTimeout = &d
			}
			return
		case "misc_dynamic":
			not("the exit code of the script cannot set the weight in the director; report the load with the real-server agent instead")
			return
		case "user":
			not("the director runs the command as its own user")
			return
		}
	case "dns":
		switch c.keyword() {
		case "type":
			k.qtype = c.arg(1)
			return
		case "name":
			k.query = c.arg(1)
			return
		}
	case "udp":
		switch c.keyword() {
		case "payload":
			k.payload = strings.Join(c.args(), "")
			return
		case "require_reply":
			k.expect = strings.Join(c.args(), "")
			return
		case "min_reply_length", "max_reply_length":
			not("the director's UDP check has no reply length bounds")
			return
		}
	}
	k.notes = append(k.notes, ignored(c, "unknown keyword in "+k.node.keyword()))
}

// http fills the HTTP settings: the first url, the Host header keepalived
// would send (url, checker, real server, virtual server virtualhost) and
// the SNI name (url, checker, virtual server virtualhost, with
// enable_sni).
func (k *kaChecker) http(out *checkOut, rs *kaRS, vs *kaVS) {
	out.set("method", "GET")
	var url *kaNode
	for _, u := range k.urls {
		if kaURLPath(u) == "" {
			k.notes = append(k.notes, ignored(u, "a url without path"))
			continue
		}
		if url == nil {
			url = u
			continue
		}
		k.notes = append(k.notes, fmt.Sprintf("%s (not mapped: keepalived fetches every url in turn; the director checks the first)", summarize(u)))
	}
	urlHost := ""
	status := []string{}
	if url != nil {
		out.set("path", str(kaURLPath(url)))
		for _, c := range url.children {
			switch c.keyword() {
			case "virtualhost":
				urlHost = c.arg(1)
			case "status_code":
				for i := 1; i < len(c.words); i++ {
					lo, hi, ok := statusRange(c.arg(i))
					if !ok {
						k.notes = append(k.notes, ignored(c, fmt.Sprintf("invalid status code %q", c.arg(i))))
						continue
					}
					for s := lo; s <= hi; s++ {
						status = append(status, strconv.Itoa(s))
					}
				}
			case "digest":
				k.notes = append(k.notes, fmt.Sprintf("digest %s (not mapped: keepalived compares the MD5 of the body; the director cannot)", c.arg(1)))
			case "regex":
				out.set("expect_body", str(c.arg(1)))
				k.notes = append(k.notes, "expect_body: keepalived's regex is a PCRE2 expression searched in the body")
			case "path":
			default:
				k.notes = append(k.notes, fmt.Sprintf("%s (not mapped)", c.text()))
			}
		}
	} else {
		k.notes = append(k.notes, "no url with a path: keepalived's check has nothing to fetch")
	}
	if len(status) == 0 {
		// keepalived's default: any 2xx status.
		for s := 200; s <= 299; s++ {
			status = append(status, strconv.Itoa(s))
		}
	}
	host := firstOf(urlHost, k.vhost, rs.timers.virtualhost, vs.timers.virtualhost)
	if host != "" {
		out.set("host", str(host))
	}
	out.set("expect_status", "["+strings.Join(dedup(status), ", ")+"]")
	if k.typ == "https" {
		if sni := firstOf(urlHost, k.vhost, vs.timers.virtualhost); k.sni && sni != "" {
			out.set("tls_server_name", str(sni))
		}
		out.set("tls_verify", "false")
		k.notes = append(k.notes, "tls_verify false: keepalived does not verify the server's certificate")
	}
}

func kaURLPath(u *kaNode) string {
	for _, c := range u.children {
		if c.keyword() == "path" {
			return c.arg(1)
		}
	}
	return ""
}

func statusRange(s string) (int, int, bool) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err := strconv.Atoi(a)
	if err != nil {
		return 0, 0, false
	}
	hi := lo
	if isRange {
		if hi, err = strconv.Atoi(b); err != nil {
			return 0, 0, false
		}
	}
	if lo < 100 || hi > 599 || lo > hi {
		return 0, 0, false
	}
	return lo, hi, true
}

func dedup(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func strList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = str(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// splitQuoted splits a command line the way keepalived's
// alloc_strvec_quoted_escaped does for scripts: blanks separate, single
// and double quotes group, a backslash escapes the next character.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}
