package director

import (
	"context"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

func TestPersistenceEngine(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, `virtual_services:
  - name: sip
    vip: 10.0.0.1
    protocol: udp
    port: 5060
    scheduler: rr
    persistence: {timeout: 60s, engine: sip}
    real_servers: [{address: 10.0.0.11}]
`)
	if _, err := r.engine.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	want := "-A -u 10.0.0.1:5060 -s rr -p 60 --pe sip\n-a -u 10.0.0.1:5060 -r 10.0.0.11:5060 -g -w 1\n"
	if got := r.k.String(); got != want {
		t.Errorf("kernel:\n%s\nwant:\n%s", got, want)
	}
	// Without the engine's module the service cannot be created, and the
	// error names the module.
	r2 := newRig(t)
	r2.k.SetModule(ipvs.PEModule("sip"), false)
	if _, err := r2.engine.Apply(context.Background(), r2.config(t, `virtual_services:
  - {name: sip, vip: 10.0.0.1, protocol: udp, port: 5060, persistence: {engine: sip}}
`)); err == nil || !strings.Contains(err.Error(), "ip_vs_pe_sip") {
		t.Errorf("missing module: %v", err)
	}
}

func TestPersistenceEngineRejects(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"virtual_services:\n  - {name: a, vip: 10.0.0.1, protocol: udp, port: 5060, persistence: {engine: http}}\n",
			"d.yaml:2:71: virtual_services[0].persistence.engine: unknown persistence engine \"http\""},
		{"virtual_services:\n  - {name: a, vip: 10.0.0.1, port: 5060, persistence: {engine: sip}}\n",
			"virtual_services[0].persistence.engine: the sip engine reads SIP over UDP; this service is tcp"},
	} {
		if _, _, err := ParseConfig("d.yaml", []byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}
