package healthz

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/lvs-node/lvs-node/internal/config"
)

// Check types.
const (
	TypeTCP   = "tcp"
	TypeHTTP  = "http"
	TypeHTTPS = "https"
	TypeUDP   = "udp"
	TypeICMP  = "icmp"
	TypeDNS   = "dns"
	TypeExec  = "exec"
	TypeNone  = "none"
)

// What a failed real server becomes.
const (
	// OnFailureQuiesce sets the weight to 0: established connections
	// finish, new ones go elsewhere.
	OnFailureQuiesce = "quiesce"
	// OnFailureRemove deletes the destination.
	OnFailureRemove = "remove"
)

// Defaults of a health_check: block.
const (
	DefaultType      = TypeTCP
	DefaultInterval  = 2 * time.Second
	DefaultTimeout   = time.Second
	DefaultRise      = 2
	DefaultFall      = 3
	DefaultOnFailure = OnFailureQuiesce
	DefaultPath      = "/"
	DefaultMethod    = "GET"
	DefaultQuery     = "."
	DefaultQType     = "SOA"
	DefaultRcode     = "NOERROR"

	// MinInterval is the shortest interval accepted.
	MinInterval = 100 * time.Millisecond
	// maxCount bounds rise and fall.
	maxCount = 1000
)

// Types returns the check types a spec may name.
func Types() []string {
	return []string{TypeTCP, TypeHTTP, TypeHTTPS, TypeUDP, TypeICMP, TypeDNS, TypeExec, TypeNone}
}

// Spec is a health_check: block. A zero field is unset: Merge takes it
// from the service's block, WithDefaults from the defaults.
type Spec struct {
	Type      string          `yaml:"type"`
	Interval  config.Duration `yaml:"interval"`
	Timeout   config.Duration `yaml:"timeout"`
	Rise      int             `yaml:"rise"`
	Fall      int             `yaml:"fall"`
	OnFailure string          `yaml:"on_failure"`

	// http and https.
	Path          string `yaml:"path"`
	Host          string `yaml:"host"`
	Method        string `yaml:"method"`
	ExpectStatus  []int  `yaml:"expect_status"` // empty: any 2xx
	ExpectBody    string `yaml:"expect_body"`   // a regular expression (Go syntax)
	TLSServerName string `yaml:"tls_server_name"`
	TLSVerify     *bool  `yaml:"tls_verify"` // default false: real servers often have self-signed certificates

	// tcp: Send is written after connecting; Expect (tcp and udp) must
	// appear in the reply, as a plain substring.
	Send    string `yaml:"send"`
	Expect  string `yaml:"expect"`
	Payload string `yaml:"payload"` // udp

	// dns.
	Query       string `yaml:"query"`
	QType       string `yaml:"qtype"`
	ExpectRcode string `yaml:"expect_rcode"`

	// exec.
	Command string   `yaml:"command"`
	Args    []string `yaml:"args"`

	// Address and Port check another target than the real server's own.
	Address string `yaml:"address"`
	Port    uint16 `yaml:"port"`
}

// Enabled reports whether the spec asks for any checking.
func (s *Spec) Enabled() bool { return s != nil && s.Type != TypeNone }

// Verify reports whether an https check verifies the certificate.
func (s *Spec) Verify() bool { return s.TLSVerify != nil && *s.TLSVerify }

// NeedsPort reports whether the check connects to a port (every type but
// icmp, exec and none).
func (s *Spec) NeedsPort() bool {
	switch s.Type {
	case TypeICMP, TypeExec, TypeNone:
		return false
	}
	return true
}

func typeOf(s *Spec) string {
	if s.Type == "" {
		return DefaultType
	}
	return s.Type
}

// Merge returns base overridden by every field over sets. When over names
// another type than base, base's protocol keys are dropped and only its
// generic keys (interval, timeout, rise, fall, on_failure, address, port)
// are kept. Either may be nil.
func Merge(base, over *Spec) Spec {
	switch {
	case base == nil && over == nil:
		return Spec{}
	case base == nil:
		return over.clone()
	case over == nil:
		return base.clone()
	}
	out := base.clone()
	if over.Type != "" && over.Type != typeOf(base) {
		out = Spec{Interval: base.Interval, Timeout: base.Timeout, Rise: base.Rise, Fall: base.Fall,
			OnFailure: base.OnFailure, Address: base.Address, Port: base.Port}
	}
	o := over.clone()
	setStr := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setStr(&out.Type, o.Type)
	if o.Interval != 0 {
		out.Interval = o.Interval
	}
	if o.Timeout != 0 {
		out.Timeout = o.Timeout
	}
	if o.Rise != 0 {
		out.Rise = o.Rise
	}
	if o.Fall != 0 {
		out.Fall = o.Fall
	}
	setStr(&out.OnFailure, o.OnFailure)
	setStr(&out.Path, o.Path)
	setStr(&out.Host, o.Host)
	setStr(&out.Method, o.Method)
	if o.ExpectStatus != nil {
		out.ExpectStatus = o.ExpectStatus
	}
	setStr(&out.ExpectBody, o.ExpectBody)
	setStr(&out.TLSServerName, o.TLSServerName)
	if o.TLSVerify != nil {
		out.TLSVerify = o.TLSVerify
	}
	setStr(&out.Send, o.Send)
	setStr(&out.Expect, o.Expect)
	setStr(&out.Payload, o.Payload)
	setStr(&out.Query, o.Query)
	setStr(&out.QType, o.QType)
	setStr(&out.ExpectRcode, o.ExpectRcode)
	setStr(&out.Command, o.Command)
	if o.Args != nil {
		out.Args = o.Args
	}
	setStr(&out.Address, o.Address)
	if o.Port != 0 {
		out.Port = o.Port
	}
	return out
}

// clone copies s deeply, so that a merged spec shares nothing with its
// sources.
func (s *Spec) clone() Spec {
	c := *s
	c.ExpectStatus = slices.Clone(s.ExpectStatus)
	c.Args = slices.Clone(s.Args)
	if s.TLSVerify != nil {
		v := *s.TLSVerify
		c.TLSVerify = &v
	}
	return c
}

// WithDefaults returns s with every unset generic and protocol key filled
// with its default.
func (s Spec) WithDefaults() Spec {
	out := s.clone()
	if out.Type == "" {
		out.Type = DefaultType
	}
	if out.Interval == 0 {
		out.Interval = config.Duration(DefaultInterval)
	}
	if out.Timeout == 0 {
		out.Timeout = config.Duration(min(DefaultTimeout, out.Interval.D()/2))
	}
	if out.Rise == 0 {
		out.Rise = DefaultRise
	}
	if out.Fall == 0 {
		out.Fall = DefaultFall
	}
	if out.OnFailure == "" {
		out.OnFailure = DefaultOnFailure
	}
	switch out.Type {
	case TypeHTTP, TypeHTTPS:
		if out.Path == "" {
			out.Path = DefaultPath
		}
		if out.Method == "" {
			out.Method = DefaultMethod
		}
	case TypeDNS:
		if out.Query == "" {
			out.Query = DefaultQuery
		}
		if out.QType == "" {
			out.QType = DefaultQType
		}
		if out.ExpectRcode == "" {
			out.ExpectRcode = DefaultRcode
		}
	}
	return out
}

// Key returns a text that is equal for two specs exactly when they check
// the same way: on_failure, which only tells the director what to do with
// the result, is left out.
func (s *Spec) Key() string {
	c := s.clone()
	c.OnFailure = ""
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("healthz: marshal spec: %v", err)) // a Spec always marshals
	}
	return string(b)
}

// keyTypes tells which check types each protocol key applies to.
func keyTypes() map[string][]string {
	web := []string{TypeHTTP, TypeHTTPS}
	return map[string][]string{
		"path": web, "host": web, "method": web, "expect_status": web, "expect_body": web,
		"tls_server_name": {TypeHTTPS}, "tls_verify": {TypeHTTPS},
		"send": {TypeTCP}, "expect": {TypeTCP, TypeUDP}, "payload": {TypeUDP},
		"query": {TypeDNS}, "qtype": {TypeDNS}, "expect_rcode": {TypeDNS},
		"command": {TypeExec}, "args": {TypeExec},
		"port": {TypeTCP, TypeHTTP, TypeHTTPS, TypeUDP, TypeDNS, TypeExec},
	}
}

// setKeys returns the protocol keys s sets, in the order of the Spec.
func (s *Spec) setKeys() []string {
	var out []string
	add := func(set bool, key string) {
		if set {
			out = append(out, key)
		}
	}
	add(s.Path != "", "path")
	add(s.Host != "", "host")
	add(s.Method != "", "method")
	add(s.ExpectStatus != nil, "expect_status")
	add(s.ExpectBody != "", "expect_body")
	add(s.TLSServerName != "", "tls_server_name")
	add(s.TLSVerify != nil, "tls_verify")
	add(s.Send != "", "send")
	add(s.Expect != "", "expect")
	add(s.Payload != "", "payload")
	add(s.Query != "", "query")
	add(s.QType != "", "qtype")
	add(s.ExpectRcode != "", "expect_rcode")
	add(s.Command != "", "command")
	add(s.Args != nil, "args")
	add(s.Port != 0, "port")
	return out
}

// Validate checks the block s written at path of doc, and returns every
// problem found, each with its position and key path. base is the
// service's block when s overrides it for one real server, nil otherwise:
// the merged result is checked too (a timeout not below the interval,
// say), and reported at the override's keys. Validate does not change s.
func (s *Spec) Validate(doc *config.Doc, path string, base *Spec) config.Errors {
	if s == nil {
		return nil
	}
	var errs config.Errors
	errorf := func(key, format string, args ...any) {
		errs = append(errs, doc.Errorf(config.Join(path, key), format, args...))
	}
	has := func(key string) bool { return doc.Has(config.Join(path, key)) }

	typ := s.Type
	switch {
	case typ == "" && base != nil:
		typ = typeOf(base)
	case typ == "":
		typ = DefaultType
	case !slices.Contains(Types(), typ):
		errorf("type", "unknown check type %q (valid: %s)", typ, strings.Join(Types(), " "))
		typ = ""
	}
	if typ == TypeNone {
		for _, k := range append([]string{"interval", "timeout", "rise", "fall", "on_failure", "address"}, s.setKeys()...) {
			if has(k) {
				errorf(k, "type none checks nothing: remove %s", k)
			}
		}
		return errs
	}
	if has("interval") && s.Interval.D() < MinInterval {
		errorf("interval", "must be at least %s, got %s", MinInterval, s.Interval)
	}
	if has("timeout") && s.Timeout == 0 {
		errorf("timeout", "must be above 0")
	}
	for _, c := range []struct {
		key string
		n   int
	}{{"rise", s.Rise}, {"fall", s.Fall}} {
		if has(c.key) && (c.n < 1 || c.n > maxCount) {
			errorf(c.key, "must be from 1 to %d, got %d", maxCount, c.n)
		}
	}
	switch s.OnFailure {
	case "", OnFailureQuiesce, OnFailureRemove:
	default:
		errorf("on_failure", "want quiesce (weight 0, established connections finish) or remove (delete the destination), got %q", s.OnFailure)
	}
	if s.Address != "" {
		if a, err := netip.ParseAddr(s.Address); err != nil || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			errorf("address", "want the IPv4 or IPv6 address of a host to check, got %q", s.Address)
		}
	}
	if has("port") && s.Port == 0 {
		errorf("port", "must be from 1 to 65535")
	}
	if typ != "" {
		kt := keyTypes()
		for _, k := range s.setKeys() {
			if !slices.Contains(kt[k], typ) {
				errorf(k, "%s applies to %s checks, this one is %s", k, strings.Join(kt[k], " and "), typ)
			}
		}
	}
	s.validateProtocol(errorf)

	// The merged spec: what will run.
	eff := Merge(base, s)
	if eff.Type == "" && typ != "" {
		eff.Type = typ
	}
	eff = eff.WithDefaults()
	if eff.Timeout.D() >= eff.Interval.D() && (base == nil || has("timeout") || has("interval")) {
		key := "timeout"
		if !has("timeout") && has("interval") {
			key = "interval"
		}
		errorf(key, "the timeout (%s) must be below the interval (%s)", eff.Timeout, eff.Interval)
	}
	if eff.Type == TypeExec && eff.Command == "" && (base == nil || has("type")) {
		errorf("command", "an exec check needs a command (an absolute path)")
	}
	return errs
}

// validateProtocol checks the protocol keys s sets.
func (s *Spec) validateProtocol(errorf func(key, format string, args ...any)) {
	if s.Path != "" && !strings.HasPrefix(s.Path, "/") {
		errorf("path", "must start with /, got %q", s.Path)
	}
	if strings.ContainsAny(s.Path+s.Host, " \r\n\t") {
		for _, k := range []struct{ key, v string }{{"path", s.Path}, {"host", s.Host}} {
			if strings.ContainsAny(k.v, " \r\n\t") {
				errorf(k.key, "must not contain spaces or line breaks, got %q", k.v)
			}
		}
	}
	if s.Method != "" && !isToken(s.Method) {
		errorf("method", "want an HTTP method such as GET or HEAD, got %q", s.Method)
	}
	for i, st := range s.ExpectStatus {
		if st < 100 || st > 599 {
			errs := config.Index("expect_status", i)
			errorf(errs, "want an HTTP status from 100 to 599, got %d", st)
		}
	}
	if s.ExpectStatus != nil && len(s.ExpectStatus) == 0 {
		errorf("expect_status", "must list at least one status (leave it out to accept any 2xx)")
	}
	if s.ExpectBody != "" {
		if _, err := regexp.Compile(s.ExpectBody); err != nil {
			errorf("expect_body", "not a valid regular expression: %v", err)
		}
	}
	if s.QType != "" {
		if _, ok := dns.StringToType[strings.ToUpper(s.QType)]; !ok {
			errorf("qtype", "unknown DNS query type %q (such as A, AAAA, SOA, NS, MX, TXT)", s.QType)
		}
	}
	if s.ExpectRcode != "" {
		if _, ok := dns.StringToRcode[strings.ToUpper(s.ExpectRcode)]; !ok {
			errorf("expect_rcode", "unknown DNS response code %q (such as NOERROR, NXDOMAIN, SERVFAIL)", s.ExpectRcode)
		}
	}
	if s.Query != "" {
		if _, ok := dns.IsDomainName(s.Query); !ok {
			errorf("query", "not a valid domain name: %q", s.Query)
		}
	}
	if s.Command != "" && !strings.HasPrefix(s.Command, "/") {
		errorf("command", "must be an absolute path (the check runs without a shell or PATH), got %q", s.Command)
	}
}

// isToken reports whether s is an HTTP token (RFC 9110).
func isToken(s string) bool {
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return s != ""
}
