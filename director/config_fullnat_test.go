package director

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/toa/format"
)

func TestFullNATConfig(t *testing.T) {
	cfg, _, err := ParseConfig("d.yaml", []byte(`virtual_services:
  - name: web
    vip: 198.51.100.100
    port: 80
    forwarding: fullnat
    local_addresses: [10.1.0.3, 10.1.0.2]
    real_servers:
      - {address: 10.1.0.11, port: 8080}
      - {address: 10.1.0.12, forwarding: dr}
  - name: web6
    vip: "2001:db8:c::100"
    port: 443
    local_addresses: ["2001:db8:1::2"]
    toa: {kind: 253}
    real_servers:
      - {address: "2001:db8:1::11", forwarding: fullnat}
  - name: multi
    vip: 198.51.100.101
    ports: [80, 443]
    forwarding: fullnat
    local_addresses: [10.1.0.2, 10.1.0.3]
    real_servers:
      - {address: 10.1.0.11}
  - name: dns
    vip: 198.51.100.102
    port: 53
    protocol: udp
    forwarding: fullnat
    local_addresses: [10.1.0.4]
    real_servers:
      - {address: 10.1.0.11}
  - name: marked
    fwmark: 7
    forwarding: fullnat
    local_addresses: [10.1.0.2, 10.1.0.3]
    toa: {kind: 254}
    real_servers:
      - {address: 10.1.0.11}
  - name: plain
    vip: 198.51.100.103
    port: 80
    forwarding: nat
    real_servers:
      - {address: 10.1.0.11}
`))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.UsesFullNAT() {
		t.Fatal("UsesFullNAT is false")
	}
	spec := cfg.fullNATSpec()
	if err := spec.Check(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tg := range spec.Targets {
		p := spec.Pools[tg.Pool]
		got = append(got, tg.String()+" via "+strings.Join(addrStrings(p.Addrs), ",")+" toa "+formatName(p.TOA))
	}
	want := []string{
		"web: tcp 198.51.100.100:80 -> 10.1.0.11:8080 via 10.1.0.2,10.1.0.3 toa 254/8",
		"web6: tcp [2001:db8:c::100]:443 -> [2001:db8:1::11]:443 via 2001:db8:1::2 toa 253/20",
		"multi: tcp 198.51.100.101:80 -> 10.1.0.11 via 10.1.0.2,10.1.0.3 toa 254/8",
		"multi: tcp 198.51.100.101:443 -> 10.1.0.11 via 10.1.0.2,10.1.0.3 toa 254/8",
		"dns: udp 198.51.100.102:53 -> 10.1.0.11:53 via 10.1.0.4 toa none",
		"marked: tcp fwmark 7 -> 10.1.0.11 via 10.1.0.2,10.1.0.3 toa 254/8",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(spec.Pools) != 3 {
		t.Fatalf("pools: %+v (services with the same addresses and format share one)", spec.Pools)
	}
	// The full-NAT real server is NAT to IPVS; the dr one stays dr.
	if d := cfg.VirtualServices[0].dests(nil); d[0].Forward != 0 || d[1].Forward == d[0].Forward {
		t.Fatalf("forwarding of the real servers: %v, %v", d[0].Forward, d[1].Forward)
	}
	if got := cfg.FullNATPaths(); strings.Join(got, " ") != "virtual_services[0].forwarding virtual_services[1].real_servers[0].forwarding virtual_services[2].forwarding virtual_services[3].forwarding virtual_services[4].forwarding" {
		t.Fatalf("paths: %q", got)
	}
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func formatName(id format.ID) string {
	if f, ok := format.Lookup(id); ok {
		return f.String()
	}
	return "none"
}

func TestFullNATConfigRejects(t *testing.T) {
	head := "virtual_services:\n  - name: web\n    vip: 198.51.100.100\n    port: 80\n"
	rs := "    real_servers:\n      - {address: 10.1.0.11}\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"no local addresses", head + "    forwarding: fullnat\n" + rs,
			"d.yaml:5:5: virtual_services[0].forwarding: full-NAT needs local_addresses"},
		{"local address family", head + "    forwarding: fullnat\n    local_addresses: [\"2001:db8::2\"]\n" + rs,
			"d.yaml:6:23: virtual_services[0].local_addresses[0]: IPv6 local address 2001:db8::2 for an IPv4 service"},
		{"local address garbage", head + "    forwarding: fullnat\n    local_addresses: [10.1.0.300]\n" + rs,
			"virtual_services[0].local_addresses[0]: want an IPv4 or IPv6 address, got \"10.1.0.300\""},
		{"local address loopback", head + "    forwarding: fullnat\n    local_addresses: [127.0.0.2]\n" + rs,
			"127.0.0.2 cannot be a source address"},
		{"local address twice", head + "    forwarding: fullnat\n    local_addresses: [10.1.0.2, 10.1.0.2]\n" + rs,
			"virtual_services[0].local_addresses[1]: 10.1.0.2 is listed twice"},
		{"local addresses without fullnat", head + "    forwarding: nat\n    local_addresses: [10.1.0.2]\n" + rs,
			"d.yaml:6:5: virtual_services[0].local_addresses: local_addresses apply to full-NAT services only"},
		{"toa without fullnat", head + "    toa: {kind: 254}\n" + rs, "virtual_services[0].toa: toa applies to full-NAT services only"},
		{"toa on udp", head + "    protocol: udp\n    forwarding: fullnat\n    local_addresses: [10.1.0.2]\n    toa: {kind: 254}\n" + rs,
			"d.yaml:8:11: virtual_services[0].toa.kind: TOA is a TCP option, this service is udp"},
		{"kind 253 for IPv4", head + "    forwarding: fullnat\n    local_addresses: [10.1.0.2]\n    toa: {kind: 253}\n" + rs,
			"virtual_services[0].toa.kind: kind 253 carries IPv6 addresses only (toa.md), this service is IPv4"},
		{"kind 200 for IPv6", "virtual_services:\n  - name: v6\n    vip: \"2001:db8::1\"\n    port: 80\n    forwarding: fullnat\n    local_addresses: [\"2001:db8:1::2\"]\n    toa: {kind: 200}\n    real_servers:\n      - {address: \"2001:db8:1::11\"}\n",
			"kind 200 carries IPv4 addresses only (toa.md), this service is IPv6"},
		{"unknown kind", head + "    forwarding: fullnat\n    local_addresses: [10.1.0.2]\n    toa: {kind: 99}\n" + rs, "no TOA format uses kind 99"},
		{"kind out of range", head + "    forwarding: fullnat\n    local_addresses: [10.1.0.2]\n    toa: {kind: 300}\n" + rs, "want an option kind"},
		{"unknown toa key", head + "    forwarding: fullnat\n    local_addresses: [10.1.0.2]\n    toa: {kinds: [254]}\n" + rs, "virtual_services[0].toa.kinds: unknown key"},
		{"one address, two formats", head + "    forwarding: fullnat\n    local_addresses: [10.1.0.2]\n" + rs +
			"  - name: b\n    vip: 198.51.100.101\n    port: 80\n    forwarding: fullnat\n    local_addresses: [10.1.0.2]\n    toa: {kind: 200}\n" + rs,
			"virtual_services[1].toa: local address 10.1.0.2 writes another TOA format for virtual_services[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseConfig("d.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}
