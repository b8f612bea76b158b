package importer

import (
	"os"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/director"
)

func importFile(t *testing.T, name string) (string, *director.Config) {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []byte
	if strings.Contains(name, "keepalived") {
		out, err = FromKeepalived(f, name)
	} else {
		out, err = FromIpvsadm(f, name)
	}
	if err != nil {
		t.Fatalf("import %s: %v", name, err)
	}
	path := t.TempDir() + "/" + name + ".yaml"
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := director.LoadConfig(path)
	if err != nil {
		t.Fatalf("output of %s does not load as a director config: %v\n%s", name, err, out)
	}
	return string(out), cfg
}

// svcLine renders a loaded service compactly for comparison.
func svcLine(v director.VirtualService) string {
	var b strings.Builder
	b.WriteString(v.Name + " ")
	if v.FWMark != nil {
		b.WriteString("fwm" + itoa(uint64(*v.FWMark)) + "/" + v.Family)
	} else {
		b.WriteString(v.Protocol + "/" + v.VIP + "/" + itoa(uint64(*v.Port)))
	}
	b.WriteString(" " + v.Scheduler)
	if len(v.SchedulerFlags) > 0 {
		b.WriteString("(" + strings.Join(v.SchedulerFlags, ",") + ")")
	}
	if v.Persistence != nil {
		b.WriteString(" p=" + v.Persistence.Timeout.String() + "/" + v.Persistence.Netmask)
	}
	if v.OnePacket {
		b.WriteString(" ops")
	}
	b.WriteString(" " + v.Forwarding + ":")
	for _, r := range v.RealServers {
		b.WriteString(" " + r.Address)
		if r.Port != nil {
			b.WriteString(":" + itoa(uint64(*r.Port)))
		}
		b.WriteString("*" + itoa(uint64(*r.Weight)))
		if r.Forwarding != "" {
			b.WriteString("/" + r.Forwarding)
		}
		if r.TunnelType != "" {
			b.WriteString("/" + r.TunnelType + itoa(uint64(r.TunnelPort)))
		}
		if r.UpperThreshold != 0 || r.LowerThreshold != 0 {
			b.WriteString("/x" + itoa(uint64(r.UpperThreshold)) + "y" + itoa(uint64(r.LowerThreshold)))
		}
	}
	return b.String()
}

func itoa(x uint64) string {
	if x == 0 {
		return "0"
	}
	var d []byte
	for ; x > 0; x /= 10 {
		d = append([]byte{byte('0' + x%10)}, d...)
	}
	return string(d)
}

func TestImportSamples(t *testing.T) {
	for _, tc := range []struct {
		file     string
		services []string
		comments []string // substrings that must appear as comments
	}{
		{"dr-web.keepalived.conf", []string{
			"tcp-192.168.200.16-80 tcp/192.168.200.16/80 wrr p=50s/255.255.255.0 dr: 192.168.200.2:80*3 192.168.200.3:80*1",
			"tcp-192.168.200.17-443 tcp/192.168.200.17/443 sh(sh-port) dr: 192.168.200.4:443*10 192.168.200.5:443*10",
		}, []string{
			"# delay_loop 6 (health checking is not mapped yet)",
			"# sorry_server 192.168.200.200 1358 (sorry server not mapped yet)",
			"# health check TCP_CHECK {connect_port 80; connect_timeout 3} (not mapped yet)",
			"# health check HTTP_GET {url {path /testurl/test.jsp; digest 640205b7b0fc66c1ea91c463fac6334d}; connect_timeout 3; retry 3; delay_before_retry 3} (not mapped yet)",
			"# health check SSL_GET",
			"# inhibit_on_failure",
			"# port 8443 replaced by the service port 443",
			"#   line 14: vrrp_instance VI_1 (VRRP is not run by lvs-node)",
			"#   line 4: global_defs {",
		}},
		{"nat-udp-fwmark.keepalived.conf", []string{
			"udp-10.10.0.53-53 udp/10.10.0.53/53 rr ops nat: 172.20.0.11:5353*2 172.20.0.12:5353*2",
			"udp-10.10.0.60-53 udp/10.10.0.60/53 rr ops nat: 172.20.0.11:5353*2 172.20.0.12:5353*2",
			"udp-10.10.0.61-53 udp/10.10.0.61/53 rr ops nat: 172.20.0.11:5353*2 172.20.0.12:5353*2",
			"udp-10.10.0.62-53 udp/10.10.0.62/53 rr ops nat: 172.20.0.11:5353*2 172.20.0.12:5353*2",
			"fwm-7 fwm7/ wlc p=15m0s/255.255.255.255 dr: 10.10.1.21:0*100 10.10.1.22:0*100/tun/gue6080",
			"tcp-10.10.0.80-80 tcp/10.10.0.80/80 lc nat: 172.20.0.31:8080*5/x1000y800",
		}, []string{
			"# from virtual_server group DNS (line 14)",
			"# health check MISC_CHECK {misc_path /usr/local/bin/check_dns 172.20.0.11; misc_timeout 5} (not mapped yet)",
			"# quorum 1 (health checking is not mapped yet)",
			"#   line 7: include /etc/keepalived/conf.d/*.conf (included files are not followed",
			"lvs_sync_daemon eth1 VI_1",
		}},
		{"ipv6-tun.keepalived.conf", []string{
			"tcp-2001-db8-10--80-80 tcp/2001:db8:10::80/80 mh(mh-fallback,mh-port) p=2m0s/64 tun: 2001:db8:20::11:80*1 2001:db8:20::12:80*1",
			"fwm6-60 fwm60/ipv6 rr dr: 2001:db8:20::21:0*4",
		}, []string{
			"# real_server 198.51.100.9 80 (line 14) not mapped: the director does not mix address families",
			"#   line 24: vrrp_instance VI_6",
		}},
		{"site.save", []string{
			"tcp-203.0.113.10-80 tcp/203.0.113.10/80 wlc dr: 10.1.0.11:80*1 10.1.0.12:80*1 10.1.0.13:80*0",
			"tcp-203.0.113.10-443 tcp/203.0.113.10/443 sh(sh-port) p=30m0s/255.255.255.0 dr: 10.1.0.11:443*1 10.1.0.12:443*1",
			"udp-203.0.113.53-53 udp/203.0.113.53/53 rr ops nat: 10.1.0.21:5353*1 10.1.0.22:5353*1",
			"fwm-100 fwm100/ wrr p=5m0s/255.255.255.255 tun: 10.1.0.31:0*10 10.1.0.32:0*5/gue6080",
			"tcp-2001-db8--80-80 tcp/2001:db8::80/80 wlc dr: 2001:db8:1::11:80*1",
			"fwm6-200 fwm200/ipv6 lc p=1m0s/64 dr: 2001:db8:1::21:0*3",
		}, []string{
			"# real server 10.1.0.41:80 (tun, weight 1) not mapped",
		}},
		{"lvs.sh", []string{
			"tcp-192.0.2.100-80 tcp/192.0.2.100/80 wrr p=10m0s/255.255.0.0 nat: 10.2.0.11:8080*3/x5000y4000 10.2.0.12:8080*1",
			"udp-192.0.2.100-514 udp/192.0.2.100/514 sh(sh-fallback) nat: 10.2.0.21:514*1",
		}, []string{
			"#   line 3: VIP=192.0.2.100 (not an ipvsadm command)",
			"#   line 6: /sbin/ipvsadm --set 900 120 300 (connection timeouts (--set) are not part of the table)",
			"#   line 12: /sbin/ipvsadm --start-daemon master --mcast-interface eth1 --syncid 7 (the connection sync daemon",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out, cfg := importFile(t, tc.file)
			var got []string
			for _, v := range cfg.VirtualServices {
				got = append(got, svcLine(v))
			}
			if g, w := strings.Join(got, "\n"), strings.Join(tc.services, "\n"); g != w {
				t.Errorf("services\n--- got\n%s\n--- want\n%s\n--- yaml\n%s", g, w, out)
			}
			for _, c := range tc.comments {
				if !strings.Contains(out, c) {
					t.Errorf("output lacks %q\n%s", c, out)
				}
			}
		})
	}
}

func TestKeepalivedErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"virtual_server 10.0.0.1 80 {\n  lb_algo rr\n", "k.conf:1:28: '{' of \"virtual_server\" is never closed"},
		{"virtual_server 10.0.0.1 80 {\n}\n}\n", "k.conf:3:1: '}' without a matching '{'"},
		{"{\n}", "k.conf:1:1: '{' without a statement to open"},
		{"virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    weight 70000\n  }\n}\n", "k.conf:3:1: weight: want 0 to 65535, got \"70000\""},
		{"virtual_server 10.0.0.1 http {\n}\n", "k.conf:1:1: virtual_server: want a port, got \"http\""},
		{"virtual_server group WEB {\n}\n", "k.conf:1:1: virtual_server group \"WEB\": no virtual_server_group of that name"},
		{"virtual_server 10.0.0.1 80 {\n lb_kind FULLNAT\n}\n", "k.conf:2:1: lb_kind: want NAT, DR or TUN, got \"FULLNAT\""},
		{"virtual_server 10.0.0.1 80 {\n  notification_email \"ops@x\n}\n", "k.conf:2:22: unterminated quoted string"},
		{"virtual_server_group G {\n 10.0.0.1-300 80\n}\nvirtual_server group G {\n}\n", "k.conf:2:1: virtual_server_group G: range end 300 beyond 255"},
	} {
		_, err := FromKeepalived(strings.NewReader(tc.in), "k.conf")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

func TestIpvsadmErrorsNamePosition(t *testing.T) {
	_, err := FromIpvsadm(strings.NewReader("-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w x\n"), "rules")
	if err == nil || !strings.Contains(err.Error(), "rules:2:34: illegal weight \"x\"") {
		t.Errorf("got %v", err)
	}
}

func TestKeepalivedSyntaxVariants(t *testing.T) {
	// One-line blocks, '{' on its own line, comments with ! and # after
	// words, quoted strings holding comment characters.
	in := `virtual_server 10.0.0.1 80 { lb_algo rr ! inline comment
  lb_kind DR
  real_server 10.0.0.11 80 { weight 2 }
  real_server 10.0.0.12 80
  {
    weight 3 # trailing
    MISC_CHECK { misc_path "/bin/check --opt=#1 !x" }
  }
}
`
	out, err := FromKeepalived(strings.NewReader(in), "v.conf")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := director.ParseConfig("v.yaml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := svcLine(cfg.VirtualServices[0]); got != "tcp-10.0.0.1-80 tcp/10.0.0.1/80 rr dr: 10.0.0.11:80*2 10.0.0.12:80*3" {
		t.Errorf("got %s\n%s", got, out)
	}
	if !strings.Contains(string(out), "# health check MISC_CHECK {misc_path /bin/check --opt=#1 !x} (not mapped yet)") {
		t.Errorf("quoted path lost:\n%s", out)
	}
}

func TestDuplicateNames(t *testing.T) {
	in := "virtual_server 10.0.0.1 80 {\n protocol TCP\n}\nvirtual_server 10.0.0.1 80 {\n protocol UDP\n}\n"
	out, err := FromKeepalived(strings.NewReader(in), "d.conf")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := director.ParseConfig("d.yaml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if cfg.VirtualServices[0].Name != "tcp-10.0.0.1-80" || cfg.VirtualServices[1].Name != "udp-10.0.0.1-80" {
		t.Errorf("names %s %s", cfg.VirtualServices[0].Name, cfg.VirtualServices[1].Name)
	}
	vs := []vsOut{{name: "", protocol: "tcp", port: 80}, {name: "", protocol: "tcp", port: 80}}
	uniqueNames(vs)
	if vs[0].name == vs[1].name || vs[1].name != vs[0].name+"-2" {
		t.Errorf("names not made unique: %q %q", vs[0].name, vs[1].name)
	}
}

func TestEmptyInput(t *testing.T) {
	for _, f := range []func() ([]byte, error){
		func() ([]byte, error) { return FromIpvsadm(strings.NewReader(""), "empty") },
		func() ([]byte, error) { return FromKeepalived(strings.NewReader("! nothing\n"), "empty") },
	} {
		out, err := f()
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := director.ParseConfig("e.yaml", out)
		if err != nil || len(cfg.VirtualServices) != 0 {
			t.Errorf("%v %v\n%s", cfg, err, out)
		}
	}
}

func FuzzFromKeepalived(f *testing.F) {
	for _, n := range []string{"dr-web.keepalived.conf", "nat-udp-fwmark.keepalived.conf", "ipv6-tun.keepalived.conf"} {
		b, err := os.ReadFile("testdata/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := FromKeepalived(strings.NewReader(in), "f.conf")
		if err != nil {
			if !strings.Contains(err.Error(), "f.conf:") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		// Whatever imports is YAML the director's strict decoder reads;
		// validation may still object (e.g. an unknown scheduler name).
		_, _, err = director.ParseConfig("f.yaml", out)
		for _, structural := range []string{"YAML syntax", "want a single value", "want a list", "want a mapping",
			"want true or false", "want a whole number", "want a number", "unknown key"} {
			if err != nil && strings.Contains(err.Error(), structural) {
				t.Fatalf("output does not decode: %v\n%s", err, out)
			}
		}
	})
}
