package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// fakeIPVS is a kernel table in memory; String prints what it was asked.
type fakeIPVS struct {
	t      *ipvs.Table
	info   ipvs.Info
	err    error
	calls  []string
	closed bool
}

func (f *fakeIPVS) Table(context.Context) (*ipvs.Table, error) {
	f.calls = append(f.calls, "table")
	return f.t, f.err
}
func (f *fakeIPVS) Info(context.Context) (ipvs.Info, error) {
	f.calls = append(f.calls, "info")
	return f.info, nil
}
func (f *fakeIPVS) Close() error { f.closed = true; return nil }
func (f *fakeIPVS) String() string {
	return strings.Join(f.calls, ",") + map[bool]string{true: " closed", false: " open"}[f.closed]
}

func fakeTable() *ipvs.Table {
	vip := netip.MustParseAddr("10.0.0.1")
	return &ipvs.Table{Services: []ipvs.ServiceEntry{{
		Service: ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: 2, Protocol: ipvs.TCP, Addr: vip, Port: 80},
			Scheduler: "wlc", Flags: ipvs.FlagPersistent, Timeout: 300, Netmask: 0xffffff00},
		Stats: ipvs.Stats{Conns: 42, InPkts: 420},
		Dests: []ipvs.DestEntry{{Destination: ipvs.Destination{DestKey: ipvs.DestKey{Addr: netip.MustParseAddr("10.0.0.11"), Port: 80}, Forward: ipvs.Route, Weight: 7},
			DestStatus: ipvs.DestStatus{ActiveConns: 2, InactConns: 1}}},
	}}}
}

func runIPVS(t *testing.T, f *fakeIPVS, args ...string) (string, error) {
	t.Helper()
	cmd := newIPVSCmdWith(func() (ipvsReader, error) { return f, nil }, nil, "")
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestIPVSList(t *testing.T) {
	f := &fakeIPVS{t: fakeTable(), info: ipvs.Info{Version: 0x010201, ConnTableSize: 4096}}
	out, err := runIPVS(t, f, "list")
	if err != nil {
		t.Fatal(err)
	}
	want := "IP Virtual Server version 1.2.1 (size=4096)\n" +
		"Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
		"TCP  10.0.0.1:80 wlc persistent 300 mask 255.255.255.0\n" +
		"  -> 10.0.0.11:80                 Route   7      2          1         \n"
	if out != want {
		t.Errorf("got\n%q\nwant\n%q", out, want)
	}
	if f.String() != "info,table closed" {
		t.Errorf("kernel calls: %s", f)
	}
	out, err = runIPVS(t, &fakeIPVS{t: fakeTable(), info: ipvs.Info{Version: 0x010201, ConnTableSize: 4096}}, "list", "--stats")
	if err != nil || !strings.Contains(out, fmt.Sprintf("%-33s%9d%9d%9d%9d%9d\n", "TCP  10.0.0.1:80", 42, 420, 0, 0, 0)) {
		t.Errorf("--stats: %v\n%s", err, out)
	}
	out, err = runIPVS(t, &fakeIPVS{t: fakeTable()}, "list", "--json")
	if err != nil || !strings.Contains(out, `"address": "10.0.0.11"`) || !strings.Contains(out, `"netmask": "255.255.255.0"`) {
		t.Errorf("--json: %v\n%s", err, out)
	}
	if _, err := runIPVS(t, &fakeIPVS{t: fakeTable()}, "list", "--stats", "--rate"); err == nil {
		t.Error("--stats --rate accepted")
	}
	f = &fakeIPVS{err: errors.New("boom")}
	if _, err := runIPVS(t, f, "list"); err == nil || !strings.Contains(err.Error(), "read IPVS table: boom") || !f.closed {
		t.Errorf("kernel error: %v (%s)", err, f)
	}
}

func TestIPVSSave(t *testing.T) {
	f := &fakeIPVS{t: fakeTable()}
	out, err := runIPVS(t, f, "save")
	if err != nil {
		t.Fatal(err)
	}
	want := "-A -t 10.0.0.1:80 -s wlc -p 300 -M 255.255.255.0\n-a -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 7\n"
	if out != want || f.String() != "table closed" {
		t.Errorf("got %q (%s), want %q", out, f, want)
	}
}

func TestImportCommands(t *testing.T) {
	dir := t.TempDir()
	ka := dir + "/keepalived.conf"
	if err := os.WriteFile(ka, []byte("virtual_server 10.0.0.1 80 {\n lb_kind DR\n real_server 10.0.0.11 80 {\n  TCP_CHECK {\n  }\n }\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"import", "keepalived", ka}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, s := range []string{"vip: 10.0.0.1\n", "forwarding: dr\n", "health_check:\n      type: tcp\n"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("keepalived import lacks %q:\n%s", s, out.String())
		}
	}
	// The summary line, on standard error: one comment for the UDP default.
	if got, want := errb.String(), ka+": 1 services, 1 real servers, 1 lines kept as comments\n"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	errb.Reset()
	root := newRoot(&out, &errb)
	out.Reset()
	root.SetIn(strings.NewReader("-A -u 10.0.0.2:53 -s rr\n-a -u 10.0.0.2:53 -r 10.0.0.21:53 -m\n"))
	root.SetArgs([]string{"import", "ipvsadm", "-"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "# director.yaml imported from the ipvsadm rules in stdin (as run with \"start\").") ||
		errb.String() != "stdin: 1 services, 1 real servers, 0 lines kept as comments\n" ||
		!strings.Contains(out.String(), "- {address: 10.0.0.21, port: 53, weight: 1}") {
		t.Errorf("ipvsadm import from stdin:\n%s", out.String())
	}
	out.Reset()
	errb.Reset()
	if code := Main([]string{"import", "ipvsadm", dir + "/missing"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "missing") {
		t.Errorf("missing file: exit %d, %s", code, errb.String())
	}
}
