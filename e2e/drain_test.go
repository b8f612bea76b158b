//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/lab/topo"
)

const drainDirector = `director:
  state_dir: %[1]s/state
  resync_interval: 1s
listen: {control: "", metrics: ""}
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
// (Engine.SetOverride, what "lvs-node director drain" calls) stays at
// weight 0 in the kernel while the daemon resyncs every second, when
// someone puts its weight back by hand, and across a daemon restart.
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
	cfg, _, err := director.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	drained := "-a -t 10.0.0.100:80 -r [fd00::12]:80 -i -w 0 --tun-type ipip"
	if err := dir.Do(func() error {
		e, closeFn, err := director.OpenSystem(cfg, nil)
		if err != nil {
			return err
		}
		defer closeFn()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := e.Apply(ctx, cfg); err != nil {
			return err
		}
		_, err = e.SetOverride(ctx, director.ServerRef{Service: "web", Addr: netip.MustParseAddr("fd00::12"), Port: 80}, true)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := stdout(t, dir, "", "ipvsadm", "-Sn"); !strings.Contains(got, drained) {
		t.Fatalf("drain not applied:\n%s", got)
	}

	for run := 1; run <= 2; run++ {
		p := dir.Start(t, "lvs-node", "director", "--config", cfgPath)
		if !p.WaitOutput("msg=applied", 30*time.Second) {
			t.Fatalf("director run %d did not apply:\n%s", run, p.Output())
		}
		if got := stdout(t, dir, "", "ipvsadm", "-Sn"); !strings.Contains(got, drained) {
			t.Fatalf("run %d: the drain did not survive the start:\n%s", run, got)
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
		if err := p.Stop(10 * time.Second); err != nil {
			t.Fatalf("stop run %d: %v\n%s", run, err, p.Output())
		}
	}
}
