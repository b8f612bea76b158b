//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// TestIpvsadmAdmin checks lvs-node ipvs timeout and zero against
// ipvsadm, a persistence engine in both views, and the director's
// timeouts: set by "director --once", put back by "director down".
func TestIpvsadmAdmin(t *testing.T) {
	modprobe(t, "ip_vs", "ip_vs_rr", "ip_vs_wlc")
	l := topo.New(t)
	lan := l.Net("lan", "10.0.0.0/24")
	dir := l.Host("dir", topo.On(lan, "10.0.0.254"))

	// Timeouts.
	if got, want := stdout(t, dir, "", "lvs-node", "ipvs", "timeout"), stdout(t, dir, "", "ipvsadm", "-L", "--timeout"); got != want {
		t.Errorf("ipvs timeout %q, ipvsadm -L --timeout %q", got, want)
	}
	dir.MustRun(t, "lvs-node", "ipvs", "timeout", "--set", "3600", "0", "60")
	if got := stdout(t, dir, "", "ipvsadm", "-L", "--timeout"); got != "Timeout (tcp tcpfin udp): 3600 120 60\n" {
		t.Errorf("after --set 3600 0 60: %q", got)
	}

	// A SIP service with the sip persistence engine, and counters.
	for _, r := range []string{"-A -u 10.0.0.5:5060 -s rr -p 60 --pe sip", "-a -u 10.0.0.5:5060 -r 10.0.0.21:5060 -g",
		"-A -t 10.0.0.6:80 -s rr", "-a -t 10.0.0.6:80 -r 10.0.0.22:80 -g"} {
		dir.MustRun(t, "ipvsadm", strings.Fields(r)...)
	}
	for _, layout := range [][]string{{}, {"--persistent-conn"}} {
		want := stdout(t, dir, "", "ipvsadm", append([]string{"-Ln"}, layout...)...)
		if got := stdout(t, dir, "", "lvs-node", append([]string{"ipvs", "list"}, layout...)...); got != want {
			t.Errorf("list %v:\n--- lvs-node\n%s--- ipvsadm\n%s", layout, got, want)
		}
	}
	if got, want := stdout(t, dir, "", "lvs-node", "ipvs", "save"), stdout(t, dir, "", "ipvsadm", "-Sn"); got != want || !strings.Contains(got, "--pe sip") {
		t.Errorf("save:\n--- lvs-node\n%s--- ipvsadm\n%s", got, want)
	}
	if err := dir.Do(func() error {
		for i := 0; i < 3; i++ {
			if c, err := net.DialTimeout("tcp", "10.0.0.6:80", 200*time.Millisecond); err == nil {
				c.Close()
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	counted := func() bool {
		return !strings.Contains(stdout(t, dir, "", "ipvsadm", "-Ln", "--stats", "-t", "10.0.0.6:80"), fmt.Sprintf("%-33s%9d", "TCP  10.0.0.6:80", 0))
	}
	waitFor(t, 10*time.Second, "the connections to show in the counters", counted)
	dir.MustRun(t, "lvs-node", "ipvs", "zero", "-u", "10.0.0.5:5060")
	if !counted() {
		t.Errorf("zeroing another service reset 10.0.0.6:80")
	}
	dir.MustRun(t, "lvs-node", "ipvs", "zero", "-t", "10.0.0.6:80")
	if counted() {
		t.Errorf("ipvs zero -t left counters:\n%s", stdout(t, dir, "", "ipvsadm", "-Ln", "--stats"))
	}
	if out, err := dir.Run(t, "lvs-node", "ipvs", "zero", "-t", "10.0.0.7:80"); err == nil {
		t.Errorf("zeroing a missing service succeeded: %s", out)
	}

	// The director's timeouts, and down.
	tmp := t.TempDir()
	cfg := filepath.Join(tmp, "director.yaml")
	if err := os.WriteFile(cfg, []byte("director:\n  state_dir: "+tmp+"/state\n  timeouts: {tcp: 15m, tcp_fin: 30s}\n"+
		"listen: {control: \"\", metrics: \"\"}\nvirtual_services:\n  - {name: web, vip: 10.0.0.8, port: 80, real_servers: [{address: 10.0.0.23}]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir.MustRun(t, "lvs-node", "director", "--once", "--config", cfg)
	if got := stdout(t, dir, "", "ipvsadm", "-L", "--timeout"); got != "Timeout (tcp tcpfin udp): 900 30 60\n" {
		t.Errorf("director timeouts: %q", got)
	}
	dir.MustRun(t, "lvs-node", "director", "down", "--config", cfg)
	if got := stdout(t, dir, "", "ipvsadm", "-L", "--timeout"); got != "Timeout (tcp tcpfin udp): 3600 120 60\n" {
		t.Errorf("after down: %q, want the timeouts from before the director", got)
	}
}
