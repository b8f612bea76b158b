package director

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// syncBuf is a log sink safe for the daemon's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type daemonRig struct {
	*rig
	path, sock string
	logs       *syncBuf
	hup        chan os.Signal
	done       chan error
	cancel     context.CancelFunc
	daemon     *Daemon
}

func startDaemon(t *testing.T, body string) *daemonRig {
	t.Helper()
	return startDaemonOn(t, newRig(t), "", body, MonitorOptions{})
}

// startDaemonOn starts a daemon on r's kernel and state directory (a
// restart when r had one) with the socket sock ("": a new one) and the
// monitor's options.
func startDaemonOn(t *testing.T, r *rig, sock, body string, opts MonitorOptions) *daemonRig {
	t.Helper()
	d := &daemonRig{rig: r, logs: &syncBuf{}, hup: make(chan os.Signal, 1), done: make(chan error, 1), sock: sock}
	if sock == "" {
		// Unix socket paths are short: keep it under /tmp.
		sockDir, err := os.MkdirTemp("", "lvsd")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(sockDir) })
		d.sock = filepath.Join(sockDir, "d.sock")
	}
	d.path = filepath.Join(r.dir, "director.yaml")
	d.write(t, body)
	cfg, _, err := LoadConfig(d.path)
	if err != nil {
		t.Fatal(err)
	}
	r.engine = NewEngine(r.dir, Deps{Kernel: r.k, Marker: r.m, Sysctls: r.s, Host: r.a, Caps: r.k, Log: slog.New(slog.NewTextHandler(d.logs, nil))})
	dm := &Daemon{Path: d.path, Engine: r.engine, Log: slog.New(slog.NewTextHandler(d.logs, nil)), Hup: d.hup, Inputs: opts}
	d.daemon = dm
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() { d.done <- dm.Run(ctx, cfg) }()
	t.Cleanup(func() { d.stop(t) })
	deadline := time.Now().Add(5 * time.Second)
	for r.engine.Config() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not apply:\n%s", d.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return d
}

func (d *daemonRig) write(t *testing.T, body string) {
	t.Helper()
	head := "director:\n  state_dir: " + d.dir + "\n  resync_interval: 1s\nlisten:\n  metrics: \"\"\n  control: " + d.sock + "\n"
	if err := os.WriteFile(d.path, []byte(head+body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (d *daemonRig) stop(t *testing.T) {
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("daemon did not stop")
	}
}

func TestDaemonReloadOverSocket(t *testing.T) {
	d := startDaemon(t, twoServices)
	fi, err := os.Stat(d.sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	d.write(t, strings.Replace(twoServices, "weight: 100}\n  - name: api", "weight: 7}\n  - name: api", 1))
	if err := RequestReload(t.Context(), d.sock); err != nil {
		t.Fatalf("reload: %v\n%s", err, d.logs)
	}
	if !strings.Contains(d.k.String(), "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 7\n") {
		t.Errorf("reload not applied:\n%s", d.k)
	}
	if !strings.Contains(d.logs.String(), "op=\"-e -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 7\"") {
		t.Errorf("change not logged:\n%s", d.logs)
	}
}

func TestDaemonBadReloadKeepsOldState(t *testing.T) {
	d := startDaemon(t, twoServices)
	before := d.k.String()
	calls := d.k.Counts().Calls
	d.write(t, twoServices+"  - name: broken\n    vip: 10.0.0.100\n    port: 80\n    scheduler: nope\n")
	err := RequestReload(t.Context(), d.sock)
	if err == nil {
		t.Fatal("bad reload accepted")
	}
	for _, want := range []string{"director.yaml:23:5: virtual_services[2].port: service TCP 10.0.0.100:80 is already defined by virtual_services[0]",
		"director.yaml:24:5: virtual_services[2].scheduler: unknown scheduler \"nope\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("reply lacks %q:\n%v", want, err)
		}
		if prefix, _, _ := strings.Cut(want, `"`); !strings.Contains(d.logs.String(), prefix) {
			t.Errorf("log lacks %q:\n%s", want, d.logs)
		}
	}
	if d.k.String() != before || d.k.Counts().Calls != calls {
		t.Errorf("bad reload changed the kernel:\n%s", d.k)
	}
	// The old configuration keeps being enforced: drift is still repaired.
	d.k.Run(opDelDest("10.0.0.100", 80, "10.0.0.11"))
	waitFor(t, 5*time.Second, func() bool { return d.k.String() == before }, func() string { return d.k.String() + d.logs.String() })
	c := d.engine.Counters()
	if c.ReloadErrors != 1 || c.Repairs < 1 {
		t.Errorf("counters = %+v", c)
	}

	// SIGHUP with the same bad file: still refused, still running.
	d.hup <- syscall.SIGHUP
	waitFor(t, 5*time.Second, func() bool { return d.engine.Counters().ReloadErrors == 2 }, d.logs.String)

	// A fixed file is taken.
	d.write(t, twoServices[:strings.Index(twoServices, "  - name: api")])
	d.hup <- syscall.SIGHUP
	waitFor(t, 5*time.Second, func() bool { return !strings.Contains(d.k.String(), ":8080") }, d.k.String)
}

func TestDaemonStopLeavesTable(t *testing.T) {
	d := startDaemon(t, twoServices)
	before := d.k.String()
	d.stop(t)
	if d.k.String() != before || before == "" {
		t.Errorf("stop changed the table:\n%s", d.k)
	}
	if _, err := os.Stat(d.sock); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
	if !strings.Contains(d.logs.String(), "the IPVS table is left in place") {
		t.Errorf("stop not logged:\n%s", d.logs)
	}
}

func TestControlRejectsOtherCommands(t *testing.T) {
	d := startDaemon(t, twoServices)
	c, err := net.Dial("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "apply virtual_services: []\n")
	out, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(out), "error\nunknown command") {
		t.Errorf("reply %q", out)
	}
}

func opDelDest(vip string, port uint16, rs string) ipvs.Op {
	return ipvs.Op{Kind: ipvs.DelDest, Service: svc(vip, port, "wlc"), Dest: dest(rs, port, 0).Destination}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, show func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out:\n%s", show())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDaemonRefusesReloadTheKernelCannotCarry: a scheduler the running
// kernel cannot load is refused at reload, with its position, and
// nothing changes.
func TestDaemonRefusesReloadTheKernelCannotCarry(t *testing.T) {
	d := startDaemon(t, twoServices)
	before := d.k.String()
	d.write(t, strings.Replace(twoServices, "scheduler: rr", "scheduler: twos", 1))
	err := RequestReload(t.Context(), d.sock)
	if err == nil || !strings.Contains(err.Error(), "director.yaml:17:5: virtual_services[1].scheduler: scheduler twos cannot be used on this host: kernel 6.1.0-test has no module ip_vs_twos") {
		t.Fatalf("reload: %v\n%s", err, d.logs)
	}
	if d.k.String() != before || d.engine.Config().VirtualServices[1].Scheduler != "rr" {
		t.Errorf("a refused reload changed something:\n%s", d.k)
	}
}
