package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// fakeAdmin keeps counters and timeouts as the kernel does: zeroing a
// service it does not hold fails with ESRCH, a zero timeout is left as it
// is.
type fakeAdmin struct {
	t        *ipvs.Table
	timeouts ipvs.Timeouts
	zeroed   []string
	closed   bool
}

func (f *fakeAdmin) Zero(_ context.Context, k *ipvs.ServiceKey) error {
	if k == nil {
		f.zeroed = append(f.zeroed, "all")
		return nil
	}
	for _, s := range f.t.Services {
		if ipvs.NormKey(s.ServiceKey) == ipvs.NormKey(*k) {
			f.zeroed = append(f.zeroed, k.String())
			return nil
		}
	}
	return syscall.ESRCH
}

func (f *fakeAdmin) Timeouts(context.Context) (ipvs.Timeouts, error) { return f.timeouts, nil }

func (f *fakeAdmin) SetTimeouts(_ context.Context, t ipvs.Timeouts) error {
	for _, p := range []struct {
		dst *time.Duration
		v   time.Duration
	}{{&f.timeouts.TCP, t.TCP}, {&f.timeouts.TCPFin, t.TCPFin}, {&f.timeouts.UDP, t.UDP}} {
		if p.v != 0 {
			*p.dst = p.v
		}
	}
	return nil
}

func (f *fakeAdmin) Close() error { f.closed = true; return nil }

func runAdmin(t *testing.T, r *fakeIPVS, a *fakeAdmin, connFile string, args ...string) (string, error) {
	t.Helper()
	cmd := newIPVSCmdWith(func() (ipvsReader, error) { return r, nil }, func() (ipvsAdmin, error) { return a, nil }, connFile)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestIPVSListOneService(t *testing.T) {
	tab := fakeTable()
	tab.Services = append(tab.Services, ipvs.ServiceEntry{Service: ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: 10, FWMark: 7}, Scheduler: "rr", Netmask: 128}})
	out, err := runAdmin(t, &fakeIPVS{t: tab}, nil, "", "list", "-t", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	want := "Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
		"TCP  10.0.0.1:80 wlc persistent 300 mask 255.255.255.0\n" +
		"  -> 10.0.0.11:80                 Route   7      2          1         \n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if out, err := runAdmin(t, &fakeIPVS{t: tab}, nil, "", "list", "-f", "7", "-6"); err != nil || !strings.HasSuffix(out, "FWM  7 IPv6 rr\n") {
		t.Errorf("-f 7 -6: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"list", "-u", "10.0.0.1:80"}, {"list", "-f", "7"}, {"list", "-t", "10.0.0.1:80", "-f", "7"},
		{"list", "-6"}, {"list", "-t", "10.0.0.1:80", "--json"}, {"list", "-t", "nohost:80"},
	} {
		if out, err := runAdmin(t, &fakeIPVS{t: tab}, nil, "", args...); err == nil {
			t.Errorf("%v accepted:\n%s", args, out)
		}
	}
}

func TestIPVSListConnections(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ip_vs_conn")
	if err := os.WriteFile(file, []byte("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"+
		"TCP 0A000002 D431 0A000064 0050 0A00000B 0050 ESTABLISHED     897\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &fakeIPVS{t: fakeTable()}
	out, err := runAdmin(t, r, nil, file, "list", "-c", "-n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "IPVS connection entries\npro expire state       source             virtual            destination\n" +
		"TCP 14:57  ESTABLISHED 10.0.0.2:54321     10.0.0.100:80      10.0.0.11:80\n"; out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if len(r.calls) != 0 {
		t.Errorf("-c asked the kernel over netlink: %s", r)
	}
	if _, err := runAdmin(t, r, nil, file, "list", "-c", "--stats"); err == nil {
		t.Error("-c --stats accepted")
	}
	if _, err := runAdmin(t, r, nil, filepath.Join(t.TempDir(), "missing"), "list", "-c"); err == nil || !strings.Contains(err.Error(), "ip_vs module") {
		t.Errorf("missing file: %v", err)
	}
}

func TestIPVSZero(t *testing.T) {
	a := &fakeAdmin{t: fakeTable()}
	if _, err := runAdmin(t, nil, a, "", "zero"); err != nil {
		t.Fatal(err)
	}
	if _, err := runAdmin(t, nil, a, "", "zero", "-t", "10.0.0.1:80"); err != nil {
		t.Fatal(err)
	}
	if _, err := runAdmin(t, nil, a, "", "zero", "-t", "10.0.0.9:80"); err == nil {
		t.Error("zeroing a missing service succeeded")
	}
	if got := strings.Join(a.zeroed, ","); got != "all,TCP 10.0.0.1:80" || !a.closed {
		t.Errorf("zeroed %s (closed %t)", got, a.closed)
	}
}

func TestIPVSTimeout(t *testing.T) {
	a := &fakeAdmin{timeouts: ipvs.Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}}
	if _, err := runAdmin(t, nil, a, "", "timeout", "--set", "3600", "0", "60"); err != nil {
		t.Fatal(err)
	}
	out, err := runAdmin(t, nil, a, "", "timeout")
	if err != nil || out != "Timeout (tcp tcpfin udp): 3600 120 60\n" {
		t.Errorf("got %q, %v", out, err)
	}
	for _, args := range [][]string{{"timeout", "--set", "1", "2"}, {"timeout", "5"}, {"timeout", "--set", "1", "x", "3"}, {"timeout", "--set", "1", "2", "2678401"}} {
		if _, err := runAdmin(t, nil, a, "", args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
