package director

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
)

const issueExample = `director:
  resync_interval: 30s
  state_dir: /var/lib/lvs-node
listen:
  metrics: 127.0.0.1:9722
  control: /run/lvs-node/director.sock
virtual_services:
  - name: web
    vip: 10.0.0.100
    protocol: tcp
    port: 80
    scheduler: wlc
    scheduler_flags: []
    persistence: {timeout: 360s, netmask: 255.255.255.255}
    one_packet: false
    forwarding: dr
    bind_vip: false
    real_servers:
      - {address: 10.0.0.11, port: 80, weight: 100}
      - {address: 10.0.0.12, port: 80, weight: 100, forwarding: dr, upper_threshold: 0, lower_threshold: 0}
`

func TestLoadIssueExample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "director.yaml")
	if err := os.WriteFile(path, []byte(issueExample), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, doc, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if doc.File != path {
		t.Errorf("doc.File = %q", doc.File)
	}
	plan, err := Desired(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := formatTable(plan.Table)
	want := "-A -t 10.0.0.100:80 -s wlc -p 360\n" +
		"-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 100\n" +
		"-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 100\n"
	if got != want {
		t.Errorf("desired table:\n%s\nwant:\n%s", got, want)
	}
	if cfg.Director.ResyncInterval.D() != 30*time.Second || cfg.Listen.ControlPath() != "/run/lvs-node/director.sock" {
		t.Errorf("settings: %+v %+v", cfg.Director, cfg.Listen)
	}
}

func TestExampleFileLoads(t *testing.T) {
	cfg, _, err := LoadConfig("../examples/director.yaml")
	if err != nil {
		t.Fatalf("examples/director.yaml: %v", err)
	}
	if len(cfg.VirtualServices) < 4 {
		t.Errorf("example has %d services, want the DR, NAT, TUN and ports: kinds", len(cfg.VirtualServices))
	}
}

func TestDefaults(t *testing.T) {
	cfg, _, err := ParseConfig("d.yaml", []byte(`virtual_services:
  - name: dns
    vip: 2001:db8::53
    protocol: udp
    port: 53
    one_packet: true
    persistence: {}
    real_servers:
      - address: 2001:db8::11
      - address: 2001:db8::12
        forwarding: nat
        port: 5353
`))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Director
	if d.ResyncInterval.D() != DefaultResyncInterval || d.StateDir != DefaultStateDir || d.NFTable != DefaultNFTable ||
		d.AutoFWMark.First != DefaultFWMarkFirst || d.AutoFWMark.Last != DefaultFWMarkLast || d.VIPInterface != "lo" {
		t.Errorf("director defaults: %+v", d)
	}
	if cfg.Listen.MetricsAddr() != DefaultMetrics || cfg.Listen.ControlPath() != DefaultControl {
		t.Errorf("listen defaults: %q %q", cfg.Listen.MetricsAddr(), cfg.Listen.ControlPath())
	}
	plan, err := Desired(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "-A -u [2001:db8::53]:53 -s wlc -p 300 -o\n" +
		"-a -u [2001:db8::53]:53 -r [2001:db8::11]:53 -g -w 1\n" +
		"-a -u [2001:db8::53]:53 -r [2001:db8::12]:5353 -m -w 1\n"
	if got := formatTable(plan.Table); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	s := plan.Table.Services[0]
	if s.Netmask != 128 || s.Flags != ipvs.FlagPersistent|ipvs.FlagOnePacket || s.Family != afInet6 {
		t.Errorf("service = %+v", s.Service)
	}
	if v4, v6 := cfg.UsesNAT(); v4 || !v6 {
		t.Errorf("UsesNAT = %v, %v", v4, v6)
	}
}

func TestEmptyEndpointsTurnThemOff(t *testing.T) {
	cfg, _, err := ParseConfig("d.yaml", []byte("listen: {metrics: \"\", control: \"\"}\nvirtual_services: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.MetricsAddr() != "" || cfg.Listen.ControlPath() != "" {
		t.Errorf("listen = %q %q", cfg.Listen.MetricsAddr(), cfg.Listen.ControlPath())
	}
}

func TestFeatures(t *testing.T) {
	cfg, _, err := ParseConfig("d.yaml", []byte(`virtual_services:
  - name: hash
    vip: 10.0.0.1
    port: 80
    scheduler: mh
    scheduler_flags: [mh-fallback, mh-port]
    persistence: {timeout: 60s, netmask: 24}
    real_servers:
      - {address: 10.0.0.11, forwarding: tun, tunnel_type: gue, tunnel_port: 5555, weight: 0}
      - {address: 10.0.0.12, upper_threshold: 100, lower_threshold: 50}
  - name: marked
    fwmark: 7
    family: ipv6
    scheduler: sh
    scheduler_flags: [sh-port]
    persistence: {netmask: ffff:ffff:ffff:ffff::}
    real_servers:
      - {address: "2001:db8::1"}
`))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Desired(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "-A -t 10.0.0.1:80 -s mh -p 60 -M 255.255.255.0 -b mh-fallback,mh-port\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.11:80 -i -w 0 --tun-type gue --tun-port 5555 --tun-nocsum\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.12:80 -g -w 1 -x 100 -y 50\n" +
		"-A -f 7 -6 -s sh -p 300 -M 64 -b sh-port\n" +
		"-a -f 7 -6 -r [2001:db8::1]:0 -g -w 1\n"
	if got := formatTable(plan.Table); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestRejects covers every rejection: each case must fail with the message
// at the right file:line:column and key path.
func TestRejects(t *testing.T) {
	const head = "virtual_services:\n  - name: web\n    vip: 10.0.0.100\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"dr port mapping", head + "    port: 80\n    real_servers:\n      - {address: 10.0.0.11, port: 8080}\n",
			"d.yaml:6:30: virtual_services[0].real_servers[0].port: a dr real server must use the service port 80 (only nat maps ports), got 8080"},
		{"tun port mapping", head + "    port: 80\n    forwarding: tun\n    real_servers:\n      - {address: 10.0.0.11, port: 81}\n",
			"d.yaml:7:30: virtual_services[0].real_servers[0].port: a tun real server must use the service port 80"},
		{"dr port on mark service", head + "    ports: [80, 443]\n    real_servers:\n      - {address: 10.0.0.11, port: 80}\n",
			"virtual_services[0].real_servers[0].port: a dr real server of a firewall-mark service keeps the client's port"},
		{"fwmark with port", head + "    port: 80\n    fwmark: 3\n",
			"d.yaml:5:5: virtual_services[0].fwmark: fwmark and port exclude each other"},
		{"fwmark with ports", head + "    ports: [80]\n    fwmark: 3\n", "fwmark and ports exclude each other"},
		{"port with ports", head + "    port: 80\n    ports: [443]\n", "d.yaml:5:5: virtual_services[0].ports: port and ports exclude each other"},
		{"no port", head, "d.yaml:2:5: virtual_services[0]: set one of port, ports or fwmark"},
		{"duplicate service", head + "    port: 80\n  - name: web2\n    vip: 10.0.0.100\n    port: 80\n",
			"d.yaml:7:5: virtual_services[1].port: service TCP 10.0.0.100:80 is already defined by virtual_services[0]"},
		{"duplicate name", head + "    port: 80\n  - name: web\n    vip: 10.0.0.100\n    port: 81\n",
			"d.yaml:5:5: virtual_services[1].name: name \"web\" is already used by virtual_services[0]"},
		{"ports overlap port", head + "    ports: [80, 443]\n  - name: b\n    vip: 10.0.0.100\n    port: 443\n",
			"virtual_services[1].port: TCP 10.0.0.100:443 is already balanced by the ports: service virtual_services[0]"},
		{"ports overlap ports", head + "    ports: [80]\n  - name: b\n    vip: 10.0.0.100\n    ports: [80]\n",
			"virtual_services[1].ports: tcp port 80 of 10.0.0.100 is already balanced by virtual_services[0]"},
		{"duplicate fwmark", head + "    fwmark: 5\n  - name: b\n    fwmark: 5\n", "virtual_services[1].fwmark: fwmark 5 is already used by virtual_services[0]"},
		{"unknown scheduler", head + "    port: 80\n    scheduler: fair\n",
			"d.yaml:5:5: virtual_services[0].scheduler: unknown scheduler \"fair\" (valid: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos)"},
		{"weight too big", head + "    port: 80\n    real_servers:\n      - {address: 10.0.0.11, weight: 65536}\n",
			"d.yaml:6:30: virtual_services[0].real_servers[0].weight: must be from 0 to 65535, got 65536"},
		{"weight with a leading zero", head + "    port: 80\n    real_servers:\n      - {address: 10.0.0.11, weight: 010}\n",
			"d.yaml:6:38: virtual_services[0].real_servers[0].weight: want a decimal whole number without leading zeros"},
		{"hex port", head + "    port: 0x50\n", "d.yaml:4:11: virtual_services[0].port: want a decimal whole number, got \"0x50\""},
		{"weight negative", head + "    port: 80\n    real_servers:\n      - {address: 10.0.0.11, weight: -1}\n",
			"virtual_services[0].real_servers[0].weight: must be from 0 to 65535, got -1"},
		{"ipv6 behind ipv4", head + "    port: 80\n    real_servers:\n      - {address: \"2001:db8::1\"}\n",
			"virtual_services[0].real_servers[0].address: IPv6 real server 2001:db8::1 behind an IPv4 service"},
		{"ipv4 behind ipv6", "virtual_services:\n  - name: v6\n    vip: 2001:db8::1\n    port: 80\n    real_servers:\n      - {address: 10.0.0.1}\n",
			"IPv4 real server 10.0.0.1 behind an IPv6 service"},
		{"bad netmask", head + "    port: 80\n    persistence: {netmask: 255.0.255.0}\n",
			"virtual_services[0].persistence.netmask: netmask 255.0.255.0 is not contiguous"},
		{"netmask garbage", head + "    port: 80\n    persistence: {netmask: banana}\n", "want a netmask such as 255.255.255.0"},
		{"netmask family", head + "    port: 80\n    persistence: {netmask: \"ffff::\"}\n", "does not match the IPv4 service"},
		{"netmask length", head + "    port: 80\n    persistence: {netmask: 33}\n", "prefix length must be from 1 to 32"},
		{"persistence fraction", head + "    port: 80\n    persistence: {timeout: 1500ms}\n", "persistence.timeout: must be whole seconds"},
		{"bad vip", "virtual_services:\n  - name: a\n    vip: 10.0.0.300\n    port: 80\n", "d.yaml:3:5: virtual_services[0].vip: want an IPv4 or IPv6 address, got \"10.0.0.300\""},
		{"missing vip", "virtual_services:\n  - name: a\n    port: 80\n", "virtual_services[0].vip: a service needs a vip"},
		{"missing name", "virtual_services:\n  - vip: 10.0.0.1\n    port: 80\n", "virtual_services[0].name: every virtual service needs a name"},
		{"bad protocol", head + "    port: 80\n    protocol: icmp\n", "virtual_services[0].protocol: unknown protocol \"icmp\""},
		{"bad forwarding", head + "    port: 80\n    forwarding: bridge\n", "unknown forwarding \"bridge\" (want dr, nat, tun or fullnat)"},
		{"bad rs forwarding", head + "    port: 80\n    real_servers:\n      - {address: 10.0.0.11, forwarding: x}\n", "real_servers[0].forwarding: unknown forwarding"},
		{"flag for other scheduler", head + "    port: 80\n    scheduler: rr\n    scheduler_flags: [sh-port]\n",
			"virtual_services[0].scheduler_flags[0]: flag \"sh-port\" applies to the sh scheduler, this service uses rr"},
		{"unknown flag", head + "    port: 80\n    scheduler: sh\n    scheduler_flags: [sh-magic]\n", "unknown scheduler flag \"sh-magic\""},
		{"one packet tcp", head + "    port: 80\n    one_packet: true\n", "one-packet scheduling applies to udp only"},
		{"duplicate real server", head + "    port: 80\n    real_servers:\n      - {address: 10.0.0.11}\n      - {address: 10.0.0.11, port: 80}\n",
			"real_servers[1]: real server 10.0.0.11:80 is already listed at virtual_services[0].real_servers[0]"},
		{"thresholds", head + "    port: 80\n    real_servers:\n      - {address: 10.0.0.11, upper_threshold: 5, lower_threshold: 6}\n", "lower_threshold: must not exceed upper_threshold (5), got 6"},
		{"tunnel type on dr", head + "    port: 80\n    real_servers:\n      - {address: 10.0.0.11, tunnel_type: gre}\n", "tunnel_type applies to tun real servers only"},
		{"gue without port", head + "    port: 80\n    forwarding: tun\n    real_servers:\n      - {address: 10.0.0.11, tunnel_type: gue}\n", "a gue tunnel needs tunnel_port"},
		{"ports zero mixed", head + "    ports: [0, 80]\n", "port 0 means every port of the VIP"},
		{"ports repeated", head + "    ports: [80, 80]\n", "virtual_services[0].ports[1]: port 80 is listed twice"},
		{"port out of range", head + "    port: 70000\n", "virtual_services[0].port: want a whole number from 0 to 65535"},
		{"resync too short", "director: {resync_interval: 10ms}\n", "d.yaml:1:12: director.resync_interval: must be at least 1s"},
		{"relative state dir", "director: {state_dir: var/lib}\n", "director.state_dir: must be an absolute path"},
		{"bad metrics", "listen: {metrics: localhost}\n", "listen.metrics: want host:port"},
		{"relative socket", "listen: {control: x.sock}\n", "listen.control: must be an absolute path"},
		{"fwmark range", "director: {auto_fwmark: {first: 10, last: 5}}\n", "director.auto_fwmark: last (0x5) must not be below first (0xa)"},
		{"fwmark range outside the mask", "director: {auto_fwmark: {first: 0x4c560000, last: 0x4c56ffff}}\n",
			"d.yaml:1:26: director.auto_fwmark.first: 0x4c560000 has bits outside mask 0x30ff: lvs-node's rules set only the mask's bits"},
		{"fwmark mask zero", "director: {auto_fwmark: {mask: 0}}\n", "director.auto_fwmark.mask: must have at least one bit set"},
		{"fwmark range full", "director: {auto_fwmark: {first: 10, last: 10}}\n" + head + "    ports: [80]\n  - name: b\n    vip: 10.0.0.1\n    ports: [80]\n",
			"director.auto_fwmark: range holds 1 marks but 2 services use ports:"},
		{"conn reuse mode", "director: {sysctls: {conn_reuse_mode: 9}}\n", "director.sysctls.conn_reuse_mode: must be from 0 to 3, got 9"},
		{"unknown key", head + "    port: 80\n    weight: 3\n", "d.yaml:5:5: virtual_services[0].weight: unknown key \"weight\""},
		{"bind vip without vip", "virtual_services:\n  - name: a\n    fwmark: 1\n    bind_vip: true\n", "bind_vip needs a vip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := ParseConfig("d.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if cfg != nil {
				t.Errorf("a rejected file still returned a Config")
			}
			if len(config.AsErrors(err)) == 0 {
				t.Errorf("error is not config.Errors: %T %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	_, _, err := ParseConfig("d.yaml", []byte(`virtual_services:
  - name: a
    vip: 10.0.0.1
    port: 80
    scheduler: nope
    real_servers:
      - {address: 10.0.0.2, weight: 99999}
  - name: b
    vip: bad
    port: 80
`))
	es := config.AsErrors(err)
	if len(es) != 3 {
		t.Fatalf("got %d errors, want 3:\n%v", len(es), err)
	}
	for i, line := range []int{5, 7, 9} {
		if es[i].Pos.Line != line {
			t.Errorf("error %d at line %d, want %d: %v", i, es[i].Pos.Line, line, es[i])
		}
	}
}

func TestParseNetmask(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fam  uint16
		want uint32
	}{
		{"255.255.255.255", afInet, 0xffffffff},
		{"255.255.0.0", afInet, 0xffff0000},
		{"/8", afInet, 0xff000000},
		{"64", afInet6, 64},
		{"ffff:ffff:ffff:ff00::", afInet6, 56},
	} {
		got, err := parseNetmask(tc.in, tc.fam)
		if err != nil || got != tc.want {
			t.Errorf("parseNetmask(%q) = %#x, %v; want %#x", tc.in, got, err, tc.want)
		}
	}
}

func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(issueExample))
	f.Add([]byte("virtual_services:\n  - {name: a, vip: 10.0.0.1, ports: [0], persistence: {netmask: 8}}\n"))
	f.Add([]byte("virtual_services:\n  - {name: a, fwmark: 1, family: ipv6, real_servers: [{address: '::1'}]}\n"))
	if data, err := os.ReadFile("../examples/director.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := ParseConfig("f.yaml", data)
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			if es := config.AsErrors(err); len(es) == 0 {
				t.Fatalf("error is not config.Errors: %v", err)
			}
			return
		}
		// A valid file must plan without error, and its plan must be
		// applicable from scratch and then stable.
		marks, err := AllocateMarks(cfg, nil)
		if err != nil {
			t.Fatalf("allocate: %v", err)
		}
		plan, err := Desired(cfg, marks, nil)
		if err != nil {
			t.Fatalf("desired: %v", err)
		}
		k := ipvstest.New()
		ops := Diff(plan.Table, &ipvs.Table{}, nil)
		if err := k.Apply(t.Context(), ops); err != nil {
			t.Fatalf("apply to empty kernel: %v", err)
		}
		cur, _ := k.Table(t.Context())
		if again := Diff(plan.Table, cur, nil); len(again) != 0 {
			t.Fatalf("not stable after apply: %v", FormatOp(again[0]))
		}
	})
}

// TestMarksMayBeHex: marks are written in hex by convention (iptables,
// ip rule); every other number is decimal.
func TestMarksMayBeHex(t *testing.T) {
	cfg, _, err := ParseConfig("d.yaml", []byte("virtual_services:\n  - {name: m, fwmark: 0x10, real_servers: [{address: 10.0.0.11, weight: 10}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if vs := cfg.VirtualServices[0]; *vs.FWMark != 16 || *vs.RealServers[0].Weight != 10 {
		t.Errorf("fwmark %d weight %d, want 16 and 10", *vs.FWMark, *vs.RealServers[0].Weight)
	}
}
