package rsagent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadRefusedByTheHostKeepsThePreviousConfiguration: a reload the
// kernel refuses half-way (the second new VIP) undoes what it changed, the
// previous configuration stays in force (later passes converge to it, not
// to the refused one), and the reply and the log say what was refused and
// why.
func TestReloadRefusedByTheHostKeepsThePreviousConfiguration(t *testing.T) {
	f := newFake(t)
	const base = `realserver:
  state_dir: STATE
  watch_interval: 100ms
  vips:
    - {address: 10.0.0.100, mode: dr}
`
	d := startSocketDaemon(t, f, base)
	write, sock, logs := d.write, d.sock, d.logs
	before := f.String()

	f.refuseAdd("ip addr add 10.0.0.103/32 dev lvs0", syscall.ENOSPC)
	write(base + `    - {address: 10.0.0.102, mode: dr}
    - {address: 10.0.0.103, mode: dr, interface: dummy}
`)
	_, err := RequestReload(context.Background(), sock)
	for _, want := range []string{"the host refused the new configuration after 4 change(s)",
		"ip addr add 10.0.0.103/32 dev lvs0: no space left on device",
		"the previous configuration stays in force: 2 change(s) undone (ip addr del 10.0.0.102/32 dev lo; ip link del lvs0)"} {
		if !errors.Is(err, ErrReloadRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("reload reply lacks %q:\n%v", want, err)
		}
	}
	if got := f.String(); got != before {
		t.Errorf("a refused reload left changes:\n%s\nwant:\n%s", got, before)
	}
	// Passes after it keep the previous configuration: nothing of the
	// refused one comes back.
	time.Sleep(350 * time.Millisecond)
	if got := f.String(); got != before {
		t.Errorf("a later pass applied the refused configuration:\n%s\nwant:\n%s", got, before)
	}
	st, err := RequestStatus(context.Background(), sock)
	if err != nil || len(st.VIPs) != 1 || st.VIPs[0].Address != "10.0.0.100" {
		t.Errorf("status after the refused reload: %+v, %v", st, err)
	}
	if l := logs.String(); !strings.Contains(l, "msg=\"reload refused\"") || !strings.Contains(l, "no space left on device") {
		t.Errorf("log lacks the refusal and its reason:\n%s", l)
	}

	// Once the host accepts it, the same file reloads.
	f.refuseAdd("ip addr add 10.0.0.103/32 dev lvs0", nil)
	changes, err := RequestReload(context.Background(), sock)
	if err != nil || len(changes) != 5 {
		t.Errorf("reload once accepted: %q, %v", changes, err)
	}
}

// TestStatusAnswersDuringASlowKernelCall: while the daemon waits for a
// module load that hangs, status answers at once with the last status,
// marked busy; the daemon goes on once the call returns.
func TestStatusAnswersDuringASlowKernelCall(t *testing.T) {
	f := newFake(t)
	const base = "realserver:\n  state_dir: STATE\n  vips:\n    - {address: 10.0.0.100, mode: dr}\n"
	d := startSocketDaemon(t, f, base)
	write, sock := d.write, d.sock

	stuck := make(chan struct{})
	f.mu.Lock()
	f.stuck = stuck
	f.mu.Unlock()
	write(base + "    - {address: 10.0.0.101, mode: tun}\n") // needs ipip: modprobe
	reloaded := make(chan error, 1)
	go func() { _, err := RequestReload(context.Background(), sock); reloaded <- err }()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	st, err := RequestStatus(context.Background(), sock)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("status during a stuck module load: %v", err)
	}
	if took > 2*statusWait || !strings.Contains(st.Busy, "the daemon is reloading since") || len(st.VIPs) != 1 {
		t.Errorf("status during a stuck module load (%v): %+v", took, st)
	}
	t.Logf("status answered in %v while the daemon waited for modprobe: %s", took.Round(time.Millisecond), st.Busy)
	close(stuck)
	if err := <-reloaded; err != nil {
		t.Fatalf("reload once the module loaded: %v", err)
	}
	st, err = RequestStatus(context.Background(), sock)
	if err != nil || st.Busy != "" || len(st.VIPs) != 2 {
		t.Errorf("status after the reload: %+v, %v", st, err)
	}
}

// socketDaemon is a daemon on fake kernel f, with a configuration file it
// reloads and a control socket, stopped when the test ends.
type socketDaemon struct {
	cfgPath, sock string
	logs          *syncBuf
	write         func(body string) // replaces the file; STATE is the state dir
}

func startSocketDaemon(t *testing.T, f *fakeKernel, body string) *socketDaemon {
	t.Helper()
	tmp := t.TempDir()
	d := &socketDaemon{cfgPath: filepath.Join(tmp, "rs.yaml"), sock: filepath.Join(tmp, "rs.sock"), logs: &syncBuf{}}
	d.write = func(body string) {
		t.Helper()
		body = strings.Replace(body, "STATE", filepath.Join(tmp, "state"), 1)
		if err := os.WriteFile(d.cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d.write(body)
	c, doc, err := LoadConfig(d.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, f, c, doc)
	a.log = slog.New(slog.NewTextHandler(d.logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx, RunOptions{ConfigPath: d.cfgPath, Control: d.sock}) }()
	t.Cleanup(func() { cancel(); <-errc })
	waitFor(t, 2*time.Second, "daemon ready", func() bool { return strings.Contains(d.logs.String(), "real server ready") })
	return d
}

// TestBusyStatusAfterARepair: a status answered while a watch pass is
// stuck in a kernel call is the one the last pass that repaired left,
// with that repair counted, not the one computed at start.
func TestBusyStatusAfterARepair(t *testing.T) {
	f := newFake(t)
	d := startSocketDaemon(t, f, ctlConfig)
	vip := Addr{Dev: "lo", Prefix: mustPrefix("10.0.0.100/32")}
	if err := f.Del(vip); err != nil {
		t.Fatal(err)
	}
	f.notify()
	waitFor(t, 2*time.Second, "the repair logged", func() bool { return strings.Contains(d.logs.String(), "msg=repaired") })

	// The next pass finds tunl0 gone and waits for a module load that
	// hangs.
	stuck := make(chan struct{})
	f.mu.Lock()
	f.stuck = stuck
	f.mu.Unlock()
	defer close(stuck)
	if err := f.Del(Link{Name: tunl0}); err != nil {
		t.Fatal(err)
	}
	f.notify()
	var st *Status
	waitFor(t, 5*time.Second, "a busy status", func() bool {
		s, err := RequestStatus(context.Background(), d.sock)
		st = s
		return err == nil && s.Busy != ""
	})
	if st.Repairs != 1 {
		t.Errorf("busy status counts %d repairs, want the 1 made before the stuck pass: %+v", st.Repairs, st)
	}
}
