package ipvsadm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

var testInfo = ipvs.Info{Version: 0x010201, ConnTableSize: 4096}

// variedTable is the table of testdata (see testdata/README.md): the
// rules as Debian's ipvsadm -Sn printed them, with what lvs-node read of
// the same kernel table at the same moment (varied.json: thresholds,
// connection counts, counters and rates, which ipvsadm -Sn does not show).
func variedTable(t *testing.T) *ipvs.Table {
	t.Helper()
	f, err := os.Open("testdata/varied.save")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := ParseSave(f, "varied.save")
	if err != nil {
		t.Fatalf("ParseSave: %v", err)
	}
	var doc JSONTable
	if err := json.Unmarshal([]byte(golden(t, "varied.json")), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Services) != len(tab.Services) {
		t.Fatalf("varied.json has %d services, varied.save %d", len(doc.Services), len(tab.Services))
	}
	key := func(proto, addr string, port uint16, mark uint32, fam string) string {
		return fmt.Sprint(proto, addr, port, mark, fam)
	}
	read := map[string]JSONService{}
	for _, js := range doc.Services {
		read[key(js.Protocol, js.Address, js.Port, js.FWMark, js.Family)] = js
	}
	st := func(s JSONStats) ipvs.Stats {
		return ipvs.Stats{Conns: s.Conns, InPkts: s.InPkts, OutPkts: s.OutPkts, InBytes: s.InBytes, OutBytes: s.OutBytes,
			CPS: s.CPS, InPPS: s.InPPS, OutPPS: s.OutPPS, InBPS: s.InBPS, OutBPS: s.OutBPS}
	}
	for i := range tab.Services {
		se := &tab.Services[i]
		fam, proto, addr := "inet", "", ""
		if family(se.ServiceKey) == afInet6 {
			fam = "inet6"
		}
		if se.FWMark == 0 {
			proto, addr = se.Protocol.String(), addrString(se.Addr)
		}
		js, ok := read[key(proto, addr, se.Port, se.FWMark, fam)]
		if !ok {
			t.Fatalf("varied.json lacks %s", se.ServiceKey)
		}
		se.Stats = st(js.Stats)
		for j := range se.Dests {
			d := &se.Dests[j]
			k := slices.IndexFunc(js.RealServers, func(x JSONServer) bool { return x.Address == addrString(d.Addr) && x.Port == d.Port })
			if k < 0 {
				t.Fatalf("varied.json lacks %s of %s", d.DestKey, se.ServiceKey)
			}
			x := js.RealServers[k]
			d.UpperThreshold, d.LowerThreshold = x.UpperThreshold, x.LowerThreshold
			d.ActiveConns, d.InactConns, d.PersistConns = x.ActiveConns, x.InactiveConns, x.PersistentConns
			d.Stats = st(x.Stats)
		}
	}
	return tab
}

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteListLayouts(t *testing.T) {
	for _, tc := range []struct {
		golden string
		format Format
	}{
		{"varied.list", FormatDefault},
		{"varied.stats", FormatStats},
		{"varied.rate", FormatRate},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteList(&b, variedTable(t), ListOptions{Info: testInfo, Format: tc.format}); err != nil {
				t.Fatal(err)
			}
			if want := golden(t, tc.golden); b.String() != want {
				t.Errorf("listing differs\n--- got\n%s--- want\n%s", b.String(), want)
			}
		})
	}
}

func TestWriteListOtherLayouts(t *testing.T) {
	tab := &ipvs.Table{Services: []ipvs.ServiceEntry{{
		Service: ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: 2, Protocol: ipvs.TCP, Addr: netip.MustParseAddr("10.1.1.1"), Port: 80},
			Scheduler: "rr", Netmask: 0xffffffff},
		Dests: []ipvs.DestEntry{
			{Destination: ipvs.Destination{DestKey: ipvs.DestKey{Addr: netip.MustParseAddr("10.1.1.3"), Port: 80}, Forward: ipvs.Tunnel, Weight: 4, TunType: ipvs.TunGUE, TunPort: 6080, TunFlags: tunCsum},
				DestStatus: ipvs.DestStatus{ActiveConns: 1, InactConns: 2, PersistConns: 9}},
			{Destination: ipvs.Destination{DestKey: ipvs.DestKey{Addr: netip.MustParseAddr("10.1.1.2"), Port: 80}, Forward: ipvs.Route, Weight: 2, UpperThreshold: 100, LowerThreshold: 50}},
			{Destination: ipvs.Destination{DestKey: ipvs.DestKey{Addr: netip.MustParseAddr("10.1.1.4"), Port: 80}, Forward: ipvs.Tunnel, Weight: 1, TunType: ipvs.TunGRE, TunFlags: tunNoCsum}},
		},
	}}}
	head := "IP Virtual Server version 1.2.1 (size=4096)\n"
	for _, tc := range []struct {
		format Format
		want   string
	}{
		{FormatThresholds, head +
			"Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n" +
			"  -> RemoteAddress:Port\n" +
			"TCP  10.1.1.1:80 rr\n" +
			"  -> 10.1.1.2:80                  100        50         0          0         \n" +
			"  -> 10.1.1.3:80                  0          0          1          2         \n" +
			"  -> 10.1.1.4:80                  0          0          0          0         \n"},
		{FormatPersistentConn, head +
			"Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n" +
			"  -> RemoteAddress:Port\n" +
			"TCP  10.1.1.1:80 rr\n" +
			"  -> 10.1.1.2:80                  2         0           0          0         \n" +
			"  -> 10.1.1.3:80                  4         9           1          2         \n" +
			"  -> 10.1.1.4:80                  1         0           0          0         \n"},
		{FormatTunInfo, head +
			"Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n" +
			"TCP  10.1.1.1:80 rr\n" +
			"  -> 10.1.1.2:80                  Route   n/a           2      0          0         \n" +
			"  -> 10.1.1.3:80                  Tunnel  gue:6080:+c   4      1          2         \n" +
			"  -> 10.1.1.4:80                  Tunnel  gre:-c        1      0          0         \n"},
	} {
		var b bytes.Buffer
		if err := WriteList(&b, tab, ListOptions{Info: testInfo, Format: tc.format}); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("format %d:\n--- got\n%s--- want\n%s", tc.format, b.String(), tc.want)
		}
	}
	var b bytes.Buffer
	if err := WriteSave(&b, tab); err != nil {
		t.Fatal(err)
	}
	want := "-A -t 10.1.1.1:80 -s rr\n" +
		"-a -t 10.1.1.1:80 -r 10.1.1.2:80 -g -w 2\n" +
		"-a -t 10.1.1.1:80 -r 10.1.1.3:80 -i -w 4 --tun-type gue --tun-port 6080 --tun-csum\n" +
		"-a -t 10.1.1.1:80 -r 10.1.1.4:80 -i -w 1 --tun-type gre --tun-nocsum\n"
	if b.String() != want {
		t.Errorf("save:\n--- got\n%s--- want\n%s", b.String(), want)
	}
	// The saved tunnel options parse back to the same destinations
	// (ipvsadm -S does not save thresholds).
	back, err := ParseSave(strings.NewReader(want), "tun.save")
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range back.Services[0].Dests {
		wantD := orderedDests(tab.Services[0].Dests, false)[i].Destination
		wantD.UpperThreshold, wantD.LowerThreshold = 0, 0
		if d.Destination != wantD {
			t.Errorf("dest %d: got %+v, want %+v", i, d.Destination, wantD)
		}
	}
}

func TestExactNumbers(t *testing.T) {
	var b bytes.Buffer
	largeNum(&b, 150000000000000, true)
	largeNum(&b, 42, true)
	largeNum(&b, 123456789, false)
	if got, want := b.String(), " 150000000000000       42  123456K"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWriteSaveGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSave(&b, variedTable(t)); err != nil {
		t.Fatal(err)
	}
	if want := golden(t, "varied.save"); b.String() != want {
		t.Errorf("save differs from ipvsadm -Sn\n--- got\n%s--- want\n%s", b.String(), want)
	}
}

func TestNtop6(t *testing.T) {
	// Expected values are glibc inet_ntop's.
	for in, want := range map[string]string{
		"2001:db8::1":              "2001:db8::1",
		"2001:db8:0:1:0:0:0:1":     "2001:db8:0:1::1",
		"2001:0:0:1:0:0:0:1":       "2001:0:0:1::1",
		"2001:db8:0:0:1:0:0:1":     "2001:db8::1:0:0:1",
		"::":                       "::",
		"::1":                      "::1",
		"::ffff:10.0.0.1":          "::ffff:10.0.0.1",
		"::10.0.0.1":               "::10.0.0.1",
		"fe80::":                   "fe80::",
		"2001:db8:1:2:3:4:5:6":     "2001:db8:1:2:3:4:5:6",
		"2001:db8:0:2:3:4:5:6":     "2001:db8:0:2:3:4:5:6",
		"1:0:0:2:0:0:0:3":          "1:0:0:2::3",
		"1:0:0:0:2:0:0:0":          "1::2:0:0:0",
		"2001:DB8:AAAA::BBBB:CCCC": "2001:db8:aaaa::bbbb:cccc",
	} {
		if got := ntop6(netip.MustParseAddr(in)); got != want {
			t.Errorf("ntop6(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestSortOrderQuirk(t *testing.T) {
	svc := func(a string, port uint16) ipvs.ServiceEntry {
		ad := netip.MustParseAddr(a)
		return ipvs.ServiceEntry{Service: ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: ipvs.FamilyOf(ad), Protocol: ipvs.TCP, Addr: ad, Port: port}, Scheduler: "wlc"}}
	}
	tab := &ipvs.Table{Services: []ipvs.ServiceEntry{
		svc("10.0.0.2", 80), svc("10.0.0.1", 443), svc("192.168.1.1", 80), svc("10.0.0.1", 80), svc("172.16.0.1", 80),
	}}
	var got []string
	for _, s := range ordered(tab, false) {
		got = append(got, s.ServiceKey.String())
	}
	// 172.16/12 and 192.168/16 are more than 2^31 above 10/8, so libipvs
	// reads their unsigned difference as a negative int and both sort
	// before 10/8; 172.16 and 192.168 are close and sort numerically.
	// Worked through glibc's merge: [10.0.0.2 10.0.0.1:443] and
	// [192.168 | 10.0.0.1:80 172.16] -> [172.16 192.168 10.0.0.1:80], then
	// the final merge takes all three before 10.0.0.1:443.
	want := []string{"TCP 172.16.0.1:80", "TCP 192.168.1.1:80", "TCP 10.0.0.1:80", "TCP 10.0.0.1:443", "TCP 10.0.0.2:80"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("order %v, want %v", got, want)
	}
	if len(tab.Services) != 5 || tab.Services[0].Addr.String() != "10.0.0.2" {
		t.Error("ordered changed its input")
	}
	var b bytes.Buffer
	if err := WriteList(&b, tab, ListOptions{Info: testInfo, NoSort: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "InActConn\nTCP  10.0.0.2:80 wlc\nTCP  10.0.0.1:443 wlc\n") {
		t.Errorf("--nosort did not keep the order:\n%s", b.String())
	}
}

func TestParseScriptLongOptionsAndNotes(t *testing.T) {
	script := `#!/bin/sh
# web farm
/sbin/ipvsadm -C
ipvsadm --add-service --tcp-service 10.0.0.1:http --scheduler wrr --persistent=120 --netmask 255.255.0.0
ipvsadm --add-server --tcp-service=10.0.0.1:80 --real-server 10.0.0.11:8080 --gatewaying --weight 3 # DR forces the port
ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.12 -m -w 2 -x 1000 -y 800
ipvsadm -At 10.0.0.5:53 -p
ipvsadm -A --udp-service 10.0.0.5:53 -s "sh" -b sh-port
ipvsadm -a -u 10.0.0.5:53 -r 10.0.0.21:53 -i --tun-type gue --tun-port 5555 --tun-remcsum
ipvsadm -E -t 10.0.0.1:80 -s rr \
    -p 30
ipvsadm --set 900 120 300
ipvsadm --start-daemon master --mcast-interface eth1
echo done
ipvsadm -Ln
`
	tab, notes, err := ParseScript(strings.NewReader(script), "farm.sh")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteSave(&b, tab); err != nil {
		t.Fatal(err)
	}
	want := "-A -t 10.0.0.1:80 -s rr -p 30\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 3\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.12:80 -m -w 2\n" +
		"-A -t 10.0.0.5:53 -s wlc -p 360\n" +
		"-A -u 10.0.0.5:53 -s sh -b sh-port\n" +
		"-a -u 10.0.0.5:53 -r 10.0.0.21:53 -i -w 1 --tun-type gue --tun-port 5555 --tun-remcsum\n"
	if b.String() != want {
		t.Errorf("table\n--- got\n%s--- want\n%s", b.String(), want)
	}
	d := tab.Services[0].Dests[1]
	if d.UpperThreshold != 1000 || d.LowerThreshold != 800 {
		t.Errorf("thresholds %d/%d, want 1000/800", d.UpperThreshold, d.LowerThreshold)
	}
	var lines []string
	for _, n := range notes {
		lines = append(lines, n.Pos.String()+" "+n.Text)
	}
	wantNotes := "farm.sh:12:9 ipvsadm --set 900 120 300|farm.sh:13:9 ipvsadm --start-daemon master --mcast-interface eth1|" +
		"farm.sh:14:1 echo done|farm.sh:15:9 ipvsadm -Ln"
	if got := strings.Join(lines, "|"); got != wantNotes {
		t.Errorf("notes\n got %s\nwant %s", got, wantNotes)
	}
	if _, err := ParseSave(strings.NewReader(script), "farm.sh"); !errors.Is(err, ErrNotRule) ||
		!strings.HasPrefix(err.Error(), "farm.sh:12:9: ") {
		t.Errorf("ParseSave of a script with --set: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80 -s rr", "f:2:7: service TCP 10.0.0.1:80 already exists"},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2", "f:1:7: no such service TCP 10.0.0.1:80"},
		{"-A -t 10.0.0.1", "f:1:7: zero port specified for non-persistent service"},
		{"-A -t 10.0.0.1:80 -o", "f:1:19: one-packet scheduling is only for UDP virtual services"},
		{"\n\n-A -t web.example.com:80", "f:3:7: illegal virtual server address[:port] \"web.example.com:80\": \"web.example.com\" is not a numeric IP address"},
		{"-A -t 10.0.0.1:80 -s rr -b sh-port", "f:1:28: incompatible scheduler flag \"sh-port\" with scheduler rr"},
		{"-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w 70000", "f:2:34: illegal weight \"70000\" (want 0 to 65535)"},
		{"-A -t 10.0.0.1:80 -r 10.0.0.2", "f:1:19: illegal 'real-server' option with the 'add-service' command"},
		{"-A -t 10.0.0.1:80 -p 0", "f:1:22: invalid timeout value \"0\""},
		{"-A -f 0", "f:1:7: invalid fwmark value \"0\""},
		{"-A -t 10.0.0.1:80 -Q", "f:1:19: unknown option -Q"},
		{"-A -t 10.0.0.1:80 --frobnicate", "f:1:19: unknown option \"--frobnicate\""},
		{"-A -6 -f 1", "f:1:4: -6 used before -f"},
		{"-A -t [2001:db8::1]:80\n-a -t [2001:db8::1]:80 -r 10.0.0.2:80", "f:2:24: different address family is allowed only for tunneling servers"},
		{"-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -g --tun-type gre", "f:2:34: tunnel options conflict with forward method"},
		{"-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue", "f:2:34: you need to supply the 'tun-port' option for the 'gue' tunnel type"},
		{"-A -t 10.0.0.1:80 -s", "f:1:19: option -s needs an argument"},
		{"-t 10.0.0.1:80", "f:1:1: no command given"},
		{"-A -D -t 10.0.0.1:80", "f:1:4: multiple commands specified"},
		{"-A -t 10.0.0.1:80 extra", "f:1:19: unexpected argument \"extra\""},
		{"-A -t 10.0.0.1:80 -M 255.255.255.0 -s \"rr", "f:1:39: unterminated quote"},
		{"-A -t 10.0.0.1:80\n-d -t 10.0.0.1:80 -r 10.0.0.9:80", "f:2:19: no such destination 10.0.0.9:80 in TCP 10.0.0.1:80"},
	} {
		_, err := ParseSave(strings.NewReader(tc.in), "f")
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

func TestEditAndDelete(t *testing.T) {
	in := `-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.0.0.2:80 -w 5
-a -t 10.0.0.1:80 -r 10.0.0.3:80
-e -t 10.0.0.1:80 -r 10.0.0.2:80 -w 9
-d -t 10.0.0.1:80 -r 10.0.0.3:80
-A -f 7 -s lc
-D -f 7
-A -t 10.0.0.9:25
-C
-A -u 10.0.0.1:53 -s rr
-E -u 10.0.0.1:53 -s wrr -p
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.0.0.2:80 -w 5
-e -t 10.0.0.1:80 -r 10.0.0.2:80 -w 9
`
	tab, err := ParseSave(strings.NewReader(in), "edit")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteSave(&b, tab); err != nil {
		t.Fatal(err)
	}
	want := "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 9\n-A -u 10.0.0.1:53 -s wrr -p 360\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestWriteJSON: the JSON of the table is what lvs-node read of the
// kernel (varied.json), and its fields say what ipvsadm's listing says.
func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, variedTable(t), testInfo); err != nil {
		t.Fatal(err)
	}
	if want := golden(t, "varied.json"); b.String() != want {
		t.Errorf("JSON differs from what was read of the kernel\n--- got\n%s--- want\n%s", b.String(), want)
	}
	var doc JSONTable
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	find := func(proto, addr string, port uint16, mark uint32) JSONService {
		t.Helper()
		for _, s := range doc.Services {
			if s.Protocol == proto && s.Address == addr && s.Port == port && s.FWMark == mark {
				return s
			}
		}
		t.Fatalf("no service %s %s %d %d", proto, addr, port, mark)
		return JSONService{}
	}
	if s := find("tcp", "10.0.0.1", 443, 0); strings.Join(s.SchedulerFlags, ",") != "sh-fallback,sh-port" || !s.Persistent ||
		s.Timeout != 360 || s.Netmask != "255.255.255.0" || s.Stats.Conns != 1 {
		t.Errorf("tcp 10.0.0.1:443: %+v", s)
	}
	if s := find("udp", "10.0.0.2", 53, 0); !s.OnePacket || s.Stats.InPkts != 5 || s.RealServers[1].UpperThreshold != 100 ||
		s.RealServers[1].LowerThreshold != 50 || s.RealServers[1].Forwarding != "nat" {
		t.Errorf("udp 10.0.0.2:53: %+v", s)
	}
	if s := find("", "", 0, 10); s.Family != "inet" || len(s.RealServers) != 3 || s.RealServers[0].Tunnel != "ipip" ||
		s.RealServers[1].Tunnel != "gue:6080:+c" || s.RealServers[2].Tunnel != "gre:-c" || s.RealServers[0].Forwarding != "tun" {
		t.Errorf("fwmark 10: %+v", s)
	}
	if s := find("", "", 0, 20); s.Family != "inet6" || s.Netmask != "64" || s.RealServers[0].Address != "2001:db8::12" {
		t.Errorf("fwmark 20: %+v", s)
	}
}

func FuzzParseSave(f *testing.F) {
	for _, name := range []string{"testdata/varied.save"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("-A -t 10.0.0.1:80 -s rr -p\n-a -t 10.0.0.1:80 -r 10.0.0.2 -m\n")
	f.Fuzz(func(t *testing.T, in string) {
		tab, err := ParseSave(strings.NewReader(in), "fuzz")
		if err != nil {
			var pe *ParseError
			var re *ruleError
			if !errors.As(err, &pe) && !errors.As(err, &re) && !strings.HasPrefix(err.Error(), "read fuzz") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		// Whatever parses saves to rules that parse to the same table.
		var a, b bytes.Buffer
		if err := WriteSave(&a, tab); err != nil {
			t.Fatal(err)
		}
		back, err := ParseSave(strings.NewReader(a.String()), "saved")
		if err != nil {
			t.Fatalf("saved rules do not parse: %v\n%s", err, a.String())
		}
		if err := WriteSave(&b, back); err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() {
			t.Fatalf("round trip differs:\n%s\n%s", a.String(), b.String())
		}
	})
}
