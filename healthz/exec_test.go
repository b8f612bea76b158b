package healthz

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// gone reports whether pid has exited (it may linger as a zombie until
// its new parent reaps it).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

func TestExec(t *testing.T) {
	const timeout = 500 * time.Millisecond
	owner := Owner{Service: "web", VIP: netip.MustParseAddr("192.0.2.10"), Port: 80, Protocol: "tcp", Real: netip.MustParseAddrPort("10.0.0.11:8080")}
	env := ExecEnv(owner, netip.MustParseAddrPort("10.0.9.11:9000"))
	run := func(t *testing.T, s Spec) Result {
		t.Helper()
		s.Type = TypeExec
		s = spec(s, timeout)
		c, err := New(s, Target{Addr: netip.MustParseAddrPort("10.0.9.11:9000"), Env: env})
		if err != nil {
			t.Fatal(err)
		}
		return runChecker(t, c, timeout)
	}

	t.Run("exit 0", func(t *testing.T) {
		wantResult(t, run(t, Spec{Command: script(t, "exit 0\n")}), true, "", "exit 0")
	})
	t.Run("non-zero", func(t *testing.T) {
		wantResult(t, run(t, Spec{Command: script(t, "echo 'backend says no' >&2\nexit 3\n")}), false, KindExit, "exit status 3: backend says no")
	})
	t.Run("args and environment", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "env")
		cmd := script(t, `echo "$1 $2 $LVS_SERVICE $LVS_VIP $LVS_PORT $LVS_PROTOCOL $LVS_REAL_SERVER $LVS_REAL_PORT $LVS_CHECK_ADDRESS $LVS_CHECK_PORT" > "$3"`+"\n")
		wantResult(t, run(t, Spec{Command: cmd, Args: []string{"a", "b c", out}}), true, "", "exit 0")
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.TrimSpace(string(b)), "a b c web 192.0.2.10 80 tcp 10.0.0.11 8080 10.0.9.11 9000"; got != want {
			t.Errorf("the command saw %q, want %q", got, want)
		}
	})
	t.Run("missing command", func(t *testing.T) {
		wantResult(t, run(t, Spec{Command: "/nonexistent/check"}), false, KindOther, "no such file or directory")
	})
	t.Run("timeout kills the process group", func(t *testing.T) {
		pids := filepath.Join(t.TempDir(), "pids")
		// The script starts a child that ignores the end of its parent, and
		// blocks; both must be gone after the check.
		cmd := script(t, "sleep 60 &\necho $$ $! > "+pids+"\nwait\n")
		start := time.Now()
		wantResult(t, run(t, Spec{Command: cmd}), false, KindTimeout, "timeout after 500ms (process group killed)")
		if took := time.Since(start); took < timeout {
			t.Errorf("returned after %s, before the timeout", took)
		}
		b, err := os.ReadFile(pids)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			deadline := time.Now().Add(2 * time.Second)
			for !gone(pid) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !gone(pid) {
				t.Errorf("process %d still runs after the timeout", pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	t.Run("leftovers of a passing check are killed", func(t *testing.T) {
		pids := filepath.Join(t.TempDir(), "pids")
		cmd := script(t, "sleep 60 >/dev/null 2>&1 &\necho $! > "+pids+"\nexit 0\n")
		wantResult(t, run(t, Spec{Command: cmd}), true, "", "exit 0")
		b, _ := os.ReadFile(pids)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		deadline := time.Now().Add(2 * time.Second)
		for pid > 0 && !gone(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if pid == 0 || !gone(pid) {
			t.Errorf("background process %d of the check still runs", pid)
		}
	})
	if _, err := New(Spec{Type: TypeExec, Command: "check.sh"}, Target{Addr: netip.MustParseAddrPort("10.0.0.1:0")}); err == nil {
		t.Error("a relative command was accepted")
	}
}
