package director

import (
	"context"
	"strings"
	"testing"
)

// TestMixedFamilyTunnels: tun real servers of the other address family
// are accepted and programmed (the kernel takes them since 3.18); dr and
// nat ones are refused with the reason, at the real server's address.
func TestMixedFamilyTunnels(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, `virtual_services:
  - name: v4
    vip: 10.0.0.1
    port: 80
    forwarding: tun
    real_servers:
      - {address: 10.0.0.11}
      - {address: "2001:db8::11"}
  - name: v6
    vip: "2001:db8::1"
    port: 443
    real_servers:
      - {address: "2001:db8::12"}
      - {address: 10.0.0.12, forwarding: tun, tunnel_type: gre}
  - name: marked
    fwmark: 9
    family: ipv6
    forwarding: tun
    real_servers:
      - {address: 10.0.0.13, tunnel_type: gue, tunnel_port: 6080}
`)
	if _, err := r.engine.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	want := "-A -t 10.0.0.1:80 -s wlc\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.11:80 -i -w 1 --tun-type ipip\n" +
		"-a -t 10.0.0.1:80 -r [2001:db8::11]:80 -i -w 1 --tun-type ipip\n" +
		"-A -t [2001:db8::1]:443 -s wlc\n" +
		"-a -t [2001:db8::1]:443 -r 10.0.0.12:443 -i -w 1 --tun-type gre --tun-nocsum\n" +
		"-a -t [2001:db8::1]:443 -r [2001:db8::12]:443 -g -w 1\n" +
		"-A -f 9 -6 -s wlc\n" +
		"-a -f 9 -6 -r 10.0.0.13:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum\n"
	if got := r.k.String(); got != want {
		t.Errorf("kernel:\n%s\nwant:\n%s", got, want)
	}
}

func TestMixedFamilyRefusedWithoutTunnel(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"dr", "virtual_services:\n  - name: a\n    vip: 10.0.0.1\n    port: 80\n    real_servers:\n      - {address: \"2001:db8::1\"}\n",
			"d.yaml:6:10: virtual_services[0].real_servers[0].address: IPv6 real server 2001:db8::1 behind an IPv4 service: only tun real servers may be of the other family (dr forwards the client's IPv4 packet unchanged"},
		{"nat", "virtual_services:\n  - name: a\n    vip: 2001:db8::1\n    port: 80\n    forwarding: tun\n    real_servers:\n      - {address: 10.0.0.1, forwarding: nat}\n",
			"virtual_services[0].real_servers[0].address: IPv4 real server 10.0.0.1 behind an IPv6 service: only tun real servers may be of the other family (nat forwards"},
		{"fwmark dr", "virtual_services:\n  - name: a\n    fwmark: 3\n    real_servers:\n      - {address: \"2001:db8::1\"}\n",
			"IPv6 real server 2001:db8::1 behind an IPv4 service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseConfig("d.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
