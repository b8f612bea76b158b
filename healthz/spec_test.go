package healthz

import (
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/config"
)

// testFile is the shape of the director's file as far as the health keys
// go: a service block, overridden per real server.
type testFile struct {
	Services []testService `yaml:"services"`
}

type testService struct {
	HealthCheck *Spec        `yaml:"health_check"`
	SorryServer *SorryServer `yaml:"sorry_server"`
	Quorum      *Quorum      `yaml:"quorum"`
	RealServers []testReal   `yaml:"real_servers"`
}

type testReal struct {
	Address     string `yaml:"address"`
	HealthCheck *Spec  `yaml:"health_check"`
}

func (f *testFile) validate(doc *config.Doc) error {
	var errs config.Errors
	for i := range f.Services {
		s := &f.Services[i]
		p := config.Index("services", i)
		errs = append(errs, s.HealthCheck.Validate(doc, config.Join(p, "health_check"), nil)...)
		errs = append(errs, s.SorryServer.Validate(doc, config.Join(p, "sorry_server"))...)
		errs = append(errs, s.Quorum.Validate(doc, config.Join(p, "quorum"), len(s.RealServers))...)
		for j := range s.RealServers {
			rp := config.Index(config.Join(p, "real_servers"), j)
			errs = append(errs, s.RealServers[j].HealthCheck.Validate(doc, config.Join(rp, "health_check"), s.HealthCheck)...)
		}
	}
	return errs.Err()
}

func parse(t *testing.T, text string) (*testFile, error) {
	t.Helper()
	var f testFile
	_, err := config.DecodeValid("hc.yaml", []byte(text), &f, f.validate)
	return &f, err
}

const issueBlock = `services:
  - health_check:
      type: http                  # tcp | http | https | udp | icmp | dns | exec | none
      interval: 2s
      timeout: 1s
      rise: 2
      fall: 3
      on_failure: quiesce
      path: /health
      host: www.example.com
      method: GET
      expect_status: [200, 204]
      expect_body: "ok|ready"
    sorry_server: {address: 10.0.0.250, port: 80, forwarding: nat}
    quorum: {min_up: 1}
    real_servers:
      - address: 10.0.0.11
      - address: 10.0.0.12
        health_check: {path: /other, fall: 5, address: 10.0.9.12, port: 8080}
`

func TestSpecIssueExample(t *testing.T) {
	f, err := parse(t, issueBlock)
	if err != nil {
		t.Fatal(err)
	}
	s := f.Services[0]
	if s.HealthCheck.Type != TypeHTTP || s.HealthCheck.Interval.D() != 2*time.Second || len(s.HealthCheck.ExpectStatus) != 2 {
		t.Errorf("decoded %+v", s.HealthCheck)
	}
	eff := Merge(s.HealthCheck, s.RealServers[1].HealthCheck).WithDefaults()
	if eff.Path != "/other" || eff.Fall != 5 || eff.Rise != 2 || eff.Host != "www.example.com" || eff.Port != 8080 {
		t.Errorf("merged %+v", eff)
	}
	if s.SorryServer.Addr().String() != "10.0.0.250" || !s.Quorum.Met(1) || s.Quorum.Met(0) {
		t.Errorf("sorry %+v quorum %+v", s.SorryServer, s.Quorum)
	}
	if fwd, set := s.SorryServer.Forward(); !set || fwd.String() == "" {
		t.Errorf("sorry server forwarding %v %v", fwd, set)
	}
}

func TestSpecErrors(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       []string // each a substring of one error, in order
	}{
		{"unknown type", `services:
  - health_check: {type: smtp}
`, []string{"hc.yaml:2:20: services[0].health_check.type: unknown check type \"smtp\""}},
		{"timeout not below interval", `services:
  - health_check:
      interval: 1s
      timeout: 1s
`, []string{"hc.yaml:4:7: services[0].health_check.timeout: the timeout (1s) must be below the interval (1s)"}},
		{"override makes the timeout too long", `services:
  - health_check: {type: tcp, interval: 2s, timeout: 1s}
    real_servers:
      - address: 10.0.0.1
        health_check:
          timeout: 3s
`, []string{"hc.yaml:6:11: services[0].real_servers[0].health_check.timeout: the timeout (3s) must be below the interval (2s)"}},
		{"bad regex", `services:
  - health_check:
      type: https
      expect_body: "ok("
`, []string{"hc.yaml:4:7: services[0].health_check.expect_body: not a valid regular expression"}},
		{"relative command", `services:
  - health_check: {type: exec, command: check.sh}
`, []string{"hc.yaml:2:32: services[0].health_check.command: must be an absolute path"}},
		{"exec without command", `services:
  - health_check: {type: exec}
`, []string{"services[0].health_check.command: an exec check needs a command"}},
		{"key of another type", `services:
  - health_check: {type: tcp, path: /x, qtype: A}
`, []string{"health_check.path: path applies to http and https checks, this one is tcp",
			"health_check.qtype: qtype applies to dns checks, this one is tcp"}},
		{"override key of the service's type", `services:
  - health_check: {type: dns, query: example.org}
    real_servers:
      - address: 10.0.0.1
        health_check: {path: /}
`, []string{"real_servers[0].health_check.path: path applies to http and https checks, this one is dns"}},
		{"ranges", `services:
  - health_check:
      interval: 10ms
      rise: 0
      fall: 1001
      on_failure: drop
      port: 0
      address: example.org
`, []string{"interval: must be at least 100ms", "rise: must be from 1 to 1000", "fall: must be from 1 to 1000",
			"on_failure: want quiesce", "port: must be from 1 to 65535", "address: want the IPv4 or IPv6 address"}},
		{"http keys", `services:
  - health_check:
      type: http
      path: health
      method: "GE T"
      expect_status: [99, 200]
`, []string{"path: must start with /", "method: want an HTTP method", "expect_status[0]: want an HTTP status"}},
		{"dns keys", `services:
  - health_check: {type: dns, qtype: BOGUS, expect_rcode: MAYBE, query: "a..b"}
`, []string{"qtype: unknown DNS query type", "expect_rcode: unknown DNS response code", "query: not a valid domain name"}},
		{"none with keys", `services:
  - health_check: {type: none, interval: 2s}
`, []string{"interval: type none checks nothing"}},
		{"sorry server and quorum", `services:
  - sorry_server: {address: nowhere, port: 0, forwarding: bridge}
    quorum: {min_up: 3}
    real_servers: [{address: 10.0.0.1}]
`, []string{"hc.yaml:2:20: services[0].sorry_server.address: want an IPv4 or IPv6 address",
			"sorry_server.port: must be from 1 to 65535", "sorry_server.forwarding: unknown forwarding \"bridge\"",
			"hc.yaml:3:14: services[0].quorum.min_up: is 3 but the service lists only 1 real servers"}},
		{"decode errors are kept", `services:
  - health_check: {type: tcp, interval: soon, colour: red}
`, []string{"interval: want a duration", "unknown key \"colour\""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.text)
			es := config.AsErrors(err)
			if len(es) != len(c.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(es), len(c.want), err)
			}
			for i, w := range c.want {
				if !strings.Contains(es[i].Error(), w) {
					t.Errorf("error %d:\n  %s\nwant it to contain\n  %s", i, es[i], w)
				}
			}
		})
	}
}

func TestMerge(t *testing.T) {
	yes := true
	base := &Spec{Type: TypeHTTPS, Interval: config.Duration(5 * time.Second), Path: "/h", TLSVerify: &yes, ExpectStatus: []int{200}, Port: 8443}
	for _, c := range []struct {
		name string
		over *Spec
		want func(Spec) bool
	}{
		{"nil override", nil, func(s Spec) bool { return s.Path == "/h" && s.Verify() && s.Port == 8443 }},
		{"same type keeps the protocol keys", &Spec{Rise: 4}, func(s Spec) bool {
			return s.Type == TypeHTTPS && s.Path == "/h" && s.Rise == 4 && s.Interval.D() == 5*time.Second
		}},
		{"another type drops them", &Spec{Type: TypeTCP}, func(s Spec) bool {
			return s.Type == TypeTCP && s.Path == "" && s.TLSVerify == nil && s.ExpectStatus == nil && s.Interval.D() == 5*time.Second && s.Port == 8443
		}},
		{"lists are replaced", &Spec{ExpectStatus: []int{301}}, func(s Spec) bool { return len(s.ExpectStatus) == 1 && s.ExpectStatus[0] == 301 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Merge(base, c.over)
			if !c.want(got) {
				t.Errorf("Merge = %+v", got)
			}
			got.ExpectStatus = append(got.ExpectStatus[:0], 999)
			if base.ExpectStatus[0] != 200 {
				t.Error("the merged spec shares a list with its base")
			}
		})
	}
}

func TestDefaultsAndKey(t *testing.T) {
	d := Spec{}.WithDefaults()
	if d.Type != TypeTCP || d.Interval.D() != DefaultInterval || d.Timeout.D() != DefaultTimeout || d.Rise != 2 || d.Fall != 3 || d.OnFailure != OnFailureQuiesce {
		t.Errorf("defaults %+v", d)
	}
	if s := (Spec{Interval: config.Duration(time.Second)}).WithDefaults(); s.Timeout.D() != 500*time.Millisecond {
		t.Errorf("default timeout with a 1s interval is %s, want half of it", s.Timeout)
	}
	if s := (Spec{Type: TypeDNS}).WithDefaults(); s.Query != "." || s.QType != "SOA" || s.ExpectRcode != "NOERROR" {
		t.Errorf("dns defaults %+v", s)
	}
	a := Spec{Type: TypeHTTP, OnFailure: OnFailureRemove}.WithDefaults()
	b := Spec{Type: TypeHTTP, OnFailure: OnFailureQuiesce}.WithDefaults()
	c := Spec{Type: TypeHTTP, Path: "/x"}.WithDefaults()
	if a.Key() != b.Key() {
		t.Error("on_failure changes the key of a check")
	}
	if a.Key() == c.Key() {
		t.Error("a different path gives the same key")
	}
}
