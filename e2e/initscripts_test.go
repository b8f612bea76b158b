//go:build e2e

package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
	"github.com/lvs-node/lvs-node/packaging"
)

const initDirector = `director:
  resync_interval: 1s
listen:
  metrics: ""
virtual_services:
  - name: echo
    vip: 10.0.0.100
    port: 7000
    scheduler: rr
    bind_vip: true
    real_servers: [{address: 10.0.0.11, port: 7000, weight: %d}]
`

// The real server keeps serving when its daemon stops (restore_on_exit is
// false by default); only "lvs-node realserver down" (package removal)
// restores the host.
const initRealserver = `realserver:
  vips:%s
  watch_interval: 500ms
`

// installInitScripts puts the packages' init scripts, shell libraries and
// maintainer scripts where the packages put them, and removes them and
// everything the services leave at the end. It returns the directory of
// the maintainer scripts.
func installInitScripts(t *testing.T) string {
	t.Helper()
	maint := t.TempDir()
	dests := map[string]string{"sysv": "/etc/init.d", "lib": "/usr/share/lvs-node", "scripts": maint}
	var made []string
	err := fs.WalkDir(packaging.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		dir, ok := dests[strings.Split(p, "/")[0]]
		if !ok {
			return nil
		}
		b, err := packaging.Files.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, path.Base(p))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		made = append(made, dst)
		return os.WriteFile(dst, b, 0o755)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, role := range []string{"director", "realserver"} {
			_ = exec.Command("/etc/init.d/lvs-node-"+role, "stop").Run()
		}
		for _, p := range append(made, "/etc/lvs-node", "/var/lib/lvs-node", "/var/log/lvs-node", "/run/lvs-node", "/usr/share/lvs-node") {
			os.RemoveAll(p)
		}
	})
	return maint
}

// initd runs /etc/init.d/lvs-node-ROLE ACTION on h and returns its output
// and exit status.
func initd(t *testing.T, h *topo.Host, role, action string) (string, int) {
	t.Helper()
	return shell(t, h, "/etc/init.d/lvs-node-"+role, action)
}

func shell(t *testing.T, h *topo.Host, name string, args ...string) (string, int) {
	t.Helper()
	out, err := h.Run(t, name, args...)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out, ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out, 0
}

// expect runs /etc/init.d/lvs-node-ROLE ACTION on h, wants the exit
// status want and returns the output.
func expect(t *testing.T, h *topo.Host, role, action string, want int) string {
	t.Helper()
	out, code := initd(t, h, role, action)
	wantCode(t, role+" "+action, out, code, want)
	return out
}

// hasVIP fails the test unless addr is on h's lo.
func hasVIP(t *testing.T, h *topo.Host, addr, when string) {
	t.Helper()
	if lo := h.MustRun(t, "ip", "-4", "addr", "show", "dev", "lo"); !strings.Contains(lo, addr+"/32") {
		t.Fatalf("%s: %s is not bound:\n%s", when, addr, lo)
	}
}

func wantCode(t *testing.T, what, out string, code, want int) {
	t.Helper()
	if code != want {
		t.Fatalf("%s: exit %d, want %d:\n%s", what, code, want, out)
	}
}

func writeConfig(t *testing.T, role, body string) {
	t.Helper()
	if err := os.MkdirAll("/etc/lvs-node", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/etc/lvs-node/"+role+".yaml", []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
}

func pidOf(t *testing.T, role string) string {
	t.Helper()
	b, err := os.ReadFile("/run/lvs-node-" + role + ".pid")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestInitScripts runs the packages' SysV init scripts (POSIX sh, under
// busybox here) and maintainer scripts on a director and a real server:
// start, status, reload with the daemon's verdict, a refused reload that
// keeps the running state, a bad configuration that fails start with the
// error and LSB code 6, stop and status 3; an upgrade that restarts only
// the running role without dropping a connection through the director; a
// stopped real server that keeps serving; and package removal restoring
// the real server.
func TestInitScripts(t *testing.T) {
	modprobe(t, "ip_vs")
	maint := installInitScripts(t)
	l := topo.New(t)
	lan := l.Net("lan", "10.0.0.0/24")
	client := l.Host("client", topo.On(lan, "10.0.0.2"))
	dir := l.Host("director", topo.On(lan, "10.0.0.1"))
	rs := l.Host("rs1", topo.On(lan, "10.0.0.11"))
	before := rsState(t, rs)

	// The real server. A file that does not validate: start fails with the
	// problem and "not configured".
	writeConfig(t, "realserver", fmt.Sprintf(initRealserver, "\n    - {address: 10.0.0.100, mode: sideways}"))
	out := expect(t, rs, "realserver", "start", 6)
	if !strings.Contains(out, "/etc/lvs-node/realserver.yaml:3:") || !strings.Contains(out, "mode") {
		t.Fatalf("start with a bad file does not name the problem:\n%s", out)
	}
	expect(t, rs, "realserver", "status", 3)

	writeConfig(t, "realserver", fmt.Sprintf(initRealserver, "\n    - {address: 10.0.0.100, mode: dr}"))
	expect(t, rs, "realserver", "start", 0)
	hasVIP(t, rs, "10.0.0.100", "start returned") // once the daemon has applied everything
	out = expect(t, rs, "realserver", "status", 0)
	if !strings.Contains(out, "running (pid "+pidOf(t, "realserver")+")") {
		t.Errorf("status: %s", out)
	}
	expect(t, rs, "realserver", "start", 0)

	// Reload waits for the daemon's verdict: the new VIP is there when it
	// returns.
	writeConfig(t, "realserver", fmt.Sprintf(initRealserver, "\n    - {address: 10.0.0.100, mode: dr}\n    - {address: 10.0.0.101, mode: dr}"))
	expect(t, rs, "realserver", "reload", 0)
	hasVIP(t, rs, "10.0.0.101", "reload returned")
	pid := pidOf(t, "realserver")
	applied := rsState(t, rs)
	writeConfig(t, "realserver", fmt.Sprintf(initRealserver, "\n    - {address: 10.0.0.100, mode: dr, gateway: 10.0.0.1}"))
	out = expect(t, rs, "realserver", "reload", 1)
	if !strings.Contains(out, "realserver.yaml:3:") {
		t.Errorf("a refused reload does not name the problem:\n%s", out)
	}
	if got := rsState(t, rs); got != applied {
		t.Fatalf("a refused reload changed the host:\n%s\nwant:\n%s", got, applied)
	}
	// restart validates before it stops anything.
	expect(t, rs, "realserver", "restart", 6)
	if pidOf(t, "realserver") != pid {
		t.Fatal("a restart with a bad file stopped the daemon")
	}
	writeConfig(t, "realserver", fmt.Sprintf(initRealserver, "\n    - {address: 10.0.0.100, mode: dr}\n    - {address: 10.0.0.101, mode: dr}"))

	// A daemon that died leaves its pid file: status 1, and start copes.
	rs.MustRun(t, "kill", "-KILL", pid)
	waitFor(t, 5*time.Second, "the killed daemon to go", func() bool { _, err := os.Stat("/proc/" + pid); return err != nil })
	expect(t, rs, "realserver", "status", 1)
	expect(t, rs, "realserver", "start", 0)

	// Stopping the daemon leaves the host serving.
	expect(t, rs, "realserver", "stop", 0)
	expect(t, rs, "realserver", "status", 3)
	if got := rsState(t, rs); got != applied {
		t.Fatalf("stopping the real server changed the host:\n%s\nwant it still serving:\n%s", got, applied)
	}
	expect(t, rs, "realserver", "stop", 0)
	expect(t, rs, "realserver", "bogus", 2)

	// The director.
	echo := echoServer(t, rs, "10.0.0.100:7000")
	defer echo.Close()
	writeConfig(t, "director", "virtual_services: [{name: x, vip: 10.0.0.100, port: 80, scheduler: fastest}]\n")
	out = expect(t, dir, "director", "start", 6)
	if !strings.Contains(out, "director.yaml:1:") {
		t.Fatalf("start with a bad file does not name the problem:\n%s", out)
	}
	writeConfig(t, "director", fmt.Sprintf(initDirector, 1))
	expect(t, dir, "director", "start", 0)
	waitFor(t, 20*time.Second, "the director to program IPVS", func() bool {
		out, _ := dir.Run(t, "ipvsadm", "-Ln")
		return strings.Contains(out, "10.0.0.11:7000               Route   1")
	})
	expect(t, dir, "director", "status", 0)
	writeConfig(t, "director", fmt.Sprintf(initDirector, 5))
	expect(t, dir, "director", "reload", 0)
	if table := dir.MustRun(t, "ipvsadm", "-Ln"); !strings.Contains(table, "10.0.0.11:7000               Route   5") {
		t.Fatalf("reload returned before the new weight was applied:\n%s", table)
	}
	table := dir.MustRun(t, "ipvsadm", "-Ln")
	writeConfig(t, "director", strings.Replace(fmt.Sprintf(initDirector, 7), "scheduler: rr", "scheduler: fastest", 1))
	out = expect(t, dir, "director", "reload", 1)
	if !strings.Contains(out, "director.yaml:9:") {
		t.Errorf("a refused reload does not name the problem:\n%s", out)
	}
	if got := dir.MustRun(t, "ipvsadm", "-Ln"); got != table {
		t.Fatalf("a refused reload changed IPVS:\n%s\nwant:\n%s", got, table)
	}
	writeConfig(t, "director", fmt.Sprintf(initDirector, 5))

	// A connection through the director, open across an upgrade: the
	// package's postinst restarts the director, which was running, and
	// not the real server, which was not.
	conn := dialEcho(t, client, "10.0.0.100:7000")
	defer conn.close()
	conn.roundTrip(t, "before the upgrade")
	dpid := pidOf(t, "director")
	out, code := shell(t, dir, "sh", filepath.Join(maint, "deb-postinst"), "configure", "0.0.9")
	wantCode(t, "postinst configure (upgrade)", out, code, 0)
	if pidOf(t, "director") == dpid {
		t.Fatalf("the upgrade did not restart the running director:\n%s", out)
	}
	if _, code := initd(t, rs, "realserver", "status"); code != 3 {
		t.Fatalf("the upgrade started the stopped real server:\n%s", out)
	}
	conn.roundTrip(t, "after the director restarted")

	expect(t, dir, "director", "stop", 0)
	expect(t, dir, "director", "status", 3)
	if got := dir.MustRun(t, "ipvsadm", "-Ln"); !strings.Contains(got, "10.0.0.11:7000") {
		t.Fatalf("stopping the director removed the IPVS service:\n%s", got)
	}
	conn.roundTrip(t, "after the director stopped")

	// A second director, started by hand, holds the control socket: the
	// init script's start fails and says why.
	other := dir.Start(t, "lvs-node", "director", "--config", "/etc/lvs-node/director.yaml")
	if !other.WaitOutput("control socket ready", 20*time.Second) {
		t.Fatalf("the second director did not start:\n%s", other.Output())
	}
	out = expect(t, dir, "director", "start", 1)
	if !strings.Contains(out, "is in use") {
		t.Errorf("start beside another director does not say why it failed:\n%s", out)
	}
	expect(t, dir, "director", "status", 3)
	if err := other.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	// Package removal: prerm stops what runs and restores the real
	// server's recorded settings.
	out, code = shell(t, rs, "sh", filepath.Join(maint, "deb-prerm"), "remove")
	wantCode(t, "prerm remove", out, code, 0)
	if got := rsState(t, rs); got != before {
		t.Fatalf("after removal the real server is not restored:\n%s\nwant:\n%s\nprerm said:\n%s", got, before, out)
	}
}

// echoServer answers each line on addr (on h) with the same line.
func echoServer(t *testing.T, h *topo.Host, addr string) interface{ Close() error } {
	t.Helper()
	ln, err := h.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintln(c, sc.Text())
				}
			}()
		}
	}()
	return ln
}

type echoConn struct {
	c interface {
		Write([]byte) (int, error)
		Close() error
		SetDeadline(time.Time) error
	}
	r *bufio.Reader
}

func dialEcho(t *testing.T, h *topo.Host, addr string) *echoConn {
	t.Helper()
	c, err := h.Dial("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &echoConn{c: c, r: bufio.NewReader(c)}
}

func (e *echoConn) close() { e.c.Close() }

// roundTrip sends a line on the open connection and wants it back.
func (e *echoConn) roundTrip(t *testing.T, when string) {
	t.Helper()
	_ = e.c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := "ping " + when
	if _, err := fmt.Fprintln(e.c, msg); err != nil {
		t.Fatalf("%s: the connection through the VIP broke: %v", when, err)
	}
	line, err := e.r.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != msg {
		t.Fatalf("%s: the connection through the VIP answered %q, %v", when, line, err)
	}
}
