package director

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

const inputsConfig = `virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    scheduler: wrr
    health_check: {type: http, path: /health, interval: 2s, timeout: 1s, rise: 2, fall: 3}
    sorry_server: {address: 10.0.0.250, port: 8080, forwarding: nat}
    feedback: {interval: 1s, min_weight: 2, max_weight: 500, port: 3262}
    real_servers:
      - {address: 10.0.0.11, weight: 100}
      - {address: 10.0.0.12, weight: 100, health_check: {on_failure: remove, path: /other}}
      - {address: 10.0.0.13, weight: 100, health_check: {type: none}}
  - name: mail
    fwmark: 7
    health_check: {type: tcp, port: 25}
    quorum: {min_up: 1}
    real_servers: [{address: 10.0.0.21}]
`

func TestInputBlocks(t *testing.T) {
	cfg, _, err := ParseConfig("d.yaml", []byte(inputsConfig))
	if err != nil {
		t.Fatal(err)
	}
	web := &cfg.VirtualServices[0]
	for j, want := range []WeightRule{
		{OnFailure: Quiesce, Checked: true, MinWeight: 2, MaxWeight: 500},
		{OnFailure: Remove, Checked: true, MinWeight: 2, MaxWeight: 500},
		{OnFailure: Quiesce, Checked: false, MinWeight: 2, MaxWeight: 500},
	} {
		if got := web.rule(j); got != want {
			t.Errorf("web real server %d: rule %+v, want %+v", j, got, want)
		}
	}
	c, ok := web.Check(1)
	if !ok || c.Type != "http" || c.Path != "/other" || c.Interval.D() != 2*time.Second || c.Fall != 3 {
		t.Errorf("merged check of real server 1: %+v", c)
	}
	if _, ok := web.Check(2); ok {
		t.Error("type none still checks")
	}
	if s := web.sorry; s == nil || s.Addr != netip.MustParseAddr("10.0.0.250") || s.Port != 8080 || s.Weight != 1 || s.Forward.String() != "nat" {
		t.Errorf("sorry server %+v", s)
	}
	if v4, _ := cfg.UsesNAT(); !v4 {
		t.Error("a NAT sorry server needs forwarding")
	}
	if f := web.Feedback; f == nil || f.StaleAfter.D() != 10*time.Second || f.Port != 3262 {
		t.Errorf("feedback defaults not filled: %+v", f)
	}
	mail := &cfg.VirtualServices[1]
	if c, ok := mail.Check(0); !ok || c.Port != 25 || !mail.rule(0).Checked {
		t.Errorf("fwmark check %+v", c)
	}
	if mail.rule(0).MaxWeight != maxWeight {
		t.Error("no feedback: weights are not clamped")
	}
}

func TestInputBlockErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"unknown type", `    health_check: {type: smtp}`, `d.yaml:5:20: virtual_services[0].health_check.type: unknown check type "smtp"`},
		{"timeout not below interval", `    health_check: {interval: 1s, timeout: 2s}`, `virtual_services[0].health_check.timeout: the timeout (2s) must be below the interval (1s)`},
		{"bad regex", `    health_check: {type: http, expect_body: "(["}`, `virtual_services[0].health_check.expect_body: not a valid regular expression`},
		{"relative command", `    health_check: {type: exec, command: check.sh}`, `virtual_services[0].health_check.command: must be an absolute path`},
		{"override timeout", `    health_check: {interval: 1s}
    real_servers: [{address: 10.0.0.11, health_check: {timeout: 3s}}]`, `d.yaml:6:56: virtual_services[0].real_servers[0].health_check.timeout: the timeout (3s) must be below the interval (1s)`},
		{"sorry family", `    sorry_server: {address: "2001:db8::1"}`, `virtual_services[0].sorry_server.address: IPv6 sorry server 2001:db8::1 behind an IPv4 service`},
		{"sorry dr port", `    sorry_server: {address: 10.0.0.250, port: 8080}`, `virtual_services[0].sorry_server.port: a dr sorry server must use the service port 80`},
		{"sorry is a real server", `    sorry_server: {address: 10.0.0.11}
    real_servers: [{address: 10.0.0.11}]`, `virtual_services[0].sorry_server.address: 10.0.0.11:80 is also a real server`},
		{"quorum too high", `    quorum: {min_up: 3}
    real_servers: [{address: 10.0.0.11}]`, `virtual_services[0].quorum.min_up: is 3 but the service lists only 1 real servers`},
		{"feedback dead band", `    feedback: {dead_band: 70%}`, `virtual_services[0].feedback.dead_band: want 0% to 50%`},
		{"feedback min weight", `    feedback: {min_weight: 0, max_weight: 70000}`, `virtual_services[0].feedback.max_weight`},
		{"feedback mode", `    feedback: {mode: equalise}`, `d.yaml:5:16: virtual_services[0].feedback.mode: want capacity (`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := "virtual_services:\n  - name: web\n    vip: 10.0.0.100\n    port: 80\n" + tc.body + "\n"
			if !strings.Contains(tc.body, "real_servers") {
				body += "    real_servers: [{address: 10.0.0.11}]\n"
			}
			_, _, err := ParseConfig("d.yaml", []byte(body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
		})
	}
	// A check of a firewall-mark service needs a port.
	_, _, err := ParseConfig("d.yaml", []byte(`virtual_services:
  - name: m
    fwmark: 3
    health_check: {type: http}
    real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]
`))
	if err == nil || !strings.Contains(err.Error(), "d.yaml:4:5: virtual_services[0].health_check: a http check of a real server without a port") ||
		strings.Count(err.Error(), "without a port") != 1 {
		t.Fatalf("fwmark check without port: %v", err)
	}
}

// TestReloadWithBadInputBlockChangesNothing: a file whose health_check
// does not validate is refused by the daemon as a whole.
func TestReloadWithBadInputBlockChangesNothing(t *testing.T) {
	d := startDaemon(t, `virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    real_servers: [{address: 10.0.0.11}]
`)
	before := d.k.String()
	d.write(t, `virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    health_check: {type: http, expect_body: "(["}
    real_servers: [{address: 10.0.0.11, weight: 7}]
`)
	err := RequestReload(t.Context(), d.sock)
	if err == nil || !strings.Contains(err.Error(), "expect_body: not a valid regular expression") {
		t.Fatalf("reload: %v", err)
	}
	if after := d.k.String(); after != before {
		t.Fatalf("a refused reload changed the table:\n%s\nwas\n%s", after, before)
	}
}
