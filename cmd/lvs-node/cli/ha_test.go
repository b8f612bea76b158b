package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
)

// A director daemon over the in-memory kernel: "director ha" reaches it
// over its real control socket.
func TestDirectorHACommands(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "control.sock")
	path := writeFile(t, "director.yaml", `director: {state_dir: `+dir+`}
listen: {metrics: "", control: `+sock+`}
virtual_services:
  - {name: web, vip: 192.0.2.10, port: 80, scheduler: mh, real_servers: [{address: 10.0.0.11}]}
sync_daemon: {interface: eth1, sync_id: 3}
`)
	cfg, _, err := director.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	e := director.NewEngine(dir, director.Deps{Kernel: ipvstest.New()})
	ha := director.NewHA(e, dir, nil)
	syncK := ipvstest.NewSync("eth1")
	ha.SetSyncKernel(syncK)
	d := &director.Daemon{Path: path, Engine: e, HA: ha}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, cfg) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no control socket")
		}
	}

	code, out, errOut := runCLI(t, "director", "ha", "backup", "--config", path)
	if code != 0 || !strings.Contains(out, "role: backup") || !strings.Contains(out, "backup on eth1, sync id 3: running") || strings.Contains(out, "master on") {
		t.Fatalf("ha backup: %d\n%s%s", code, out, errOut)
	}
	// keepalived is not running in this test: status says so.
	if !strings.Contains(out, "keepalived: NOT RUNNING") {
		t.Errorf("status does not report keepalived missing:\n%s", out)
	}
	code, out, _ = runCLI(t, "director", "ha", "master", "--socket", sock)
	if code != 0 || !strings.Contains(out, "master on eth1, sync id 3: running") {
		t.Fatalf("ha master: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "director", "ha", "drain", "--socket", sock)
	if code != 0 || !strings.Contains(out, "drained: yes") {
		t.Fatalf("ha drain: %d\n%s", code, out)
	}
	// lvs-node check reports the HA state of a valid file as warnings.
	code, _, errOut = runCLI(t, "check", "--config", path)
	if code != 0 || !strings.Contains(errOut, "warning: the director is drained") || !strings.Contains(errOut, "keepalived is not running: the HA role stays master") {
		t.Errorf("check: %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "director", "ha", "ready", "--socket", filepath.Join(dir, "none.sock")); code == 0 || !strings.Contains(errOut, "is lvs-node director running?") {
		t.Errorf("no daemon: %d %s", code, errOut)
	}
}

// BIRD missing or not answering: check names it and the file stays valid.
func TestCheckReportsBIRD(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, "director.yaml", `director: {state_dir: `+dir+`}
virtual_services:
  - {name: web, vip: 192.0.2.10, port: 80, real_servers: [{address: 10.0.0.11}]}
announce:
  bird: {include_file: `+dir+`/no/vips.conf, socket: `+dir+`/bird.ctl, birdc: `+dir+`/birdc-missing}
sync_daemon: {interface: nosuchif0}
`)
	var o, e bytes.Buffer
	code := Main([]string{"check", "--config", path}, &o, &e)
	if code != 0 || !strings.Contains(o.String(), "valid director configuration") {
		t.Fatalf("check: %d %s %s", code, o.String(), e.String())
	}
	for _, want := range []string{"announce.bird.birdc " + dir + "/birdc-missing: not found", "directory " + dir + "/no does not exist", "sync_daemon.interface nosuchif0"} {
		if !strings.Contains(e.String(), want) {
			t.Errorf("check warnings lack %q:\n%s", want, e.String())
		}
	}
}
