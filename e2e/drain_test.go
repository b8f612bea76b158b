//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

const drainDirector = `director:
  state_dir: %[1]s/state
  resync_interval: 1s
listen: {control: "%[1]s/director.sock", metrics: ""}
virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    forwarding: tun
    real_servers:
      - {address: 10.0.0.11, weight: 7}
      - {address: "fd00::12", weight: 5}
`

// TestDrainSurvivesResyncAndRestart: a real server drained by the operator
// ("lvs-node director drain" over the control socket) stays at weight 0
// in the kernel while the daemon resyncs every second, when someone puts
// its weight back by hand, and across a daemon restart; "lvs-node
// director ready" gives it its weight back.
func TestDrainSurvivesResyncAndRestart(t *testing.T) {
	modprobe(t, "ip_vs", "ip_vs_wlc")
	l := topo.New(t)
	lan := l.Net("lan", "10.0.0.0/24")
	dir := l.Host("dir", topo.On(lan, "10.0.0.1", "fd00::1/64"))
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "director.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(drainDirector, tmp)), 0o600); err != nil {
		t.Fatal(err)
	}
	drained := "-a -t 10.0.0.100:80 -r [fd00::12]:80 -i -w 0 --tun-type ipip"
	for run := 1; run <= 2; run++ {
		p := dir.Start(t, "lvs-node", "director", "--config", cfgPath)
		if !p.WaitOutput("msg=applied", 30*time.Second) {
			t.Fatalf("director run %d did not apply:\n%s", run, p.Output())
		}
		if run == 1 {
			if got := stdout(t, dir, "", "ipvsadm", "-Sn"); !strings.Contains(got, "-r [fd00::12]:80 -i -w 5") {
				t.Fatalf("before the drain:\n%s", got)
			}
			out := dir.MustRun(t, "lvs-node", "director", "drain", "--config", cfgPath, "[fd00::12]:80", "--service", "web")
			t.Logf("drain: %s", strings.TrimSpace(out))
		}
		if got := stdout(t, dir, "", "ipvsadm", "-Sn"); !strings.Contains(got, drained) {
			t.Fatalf("run %d: not drained:\n%s", run, got)
		}
		// A weight put back by hand is drift: the next resync drains again.
		dir.MustRun(t, "ipvsadm", "-e", "-t", "10.0.0.100:80", "-r", "[fd00::12]:80", "-i", "-w", "5")
		waitFor(t, 10*time.Second, "the resync to drain the server again", func() bool {
			return strings.Contains(stdout(t, dir, "", "ipvsadm", "-Sn"), drained)
		})
		time.Sleep(2500 * time.Millisecond) // more resyncs
		if got := stdout(t, dir, "", "ipvsadm", "-Sn"); !strings.Contains(got, drained) ||
			!strings.Contains(got, "-r 10.0.0.11:80 -i -w 7") {
			t.Fatalf("run %d: after resyncs:\n%s", run, got)
		}
		if run == 2 {
			dir.MustRun(t, "lvs-node", "director", "ready", "--config", cfgPath, "[fd00::12]:80")
			if got := stdout(t, dir, "", "ipvsadm", "-Sn"); !strings.Contains(got, "-r [fd00::12]:80 -i -w 5") {
				t.Fatalf("ready did not give the weight back:\n%s", got)
			}
		}
		if err := p.Stop(10 * time.Second); err != nil {
			t.Fatalf("stop run %d: %v\n%s", run, err, p.Output())
		}
	}
}
