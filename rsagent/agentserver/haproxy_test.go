package agentserver

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// haproxyBin finds Debian's haproxy (installed by scripts/install-deps.sh).
// Locally a missing haproxy skips the test; under CI=true it fails it.
func haproxyBin(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("haproxy is not installed (scripts/install-deps.sh installs it)")
	}
	t.Skip("haproxy is not installed (scripts/install-deps.sh installs it)")
	return ""
}

// haproxyRuntime sends one command to HAProxy's stats socket.
func haproxyRuntime(t *testing.T, sock, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		t.Fatalf("haproxy stats socket: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}

// table parses an output whose header line starts with "# ": a row per
// line, keyed by column name; lines before the header are dropped.
func table(out string) []map[string]string {
	var cols []string
	var rows []map[string]string
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "# "):
			cols = strings.FieldsFunc(strings.TrimPrefix(l, "# "), func(r rune) bool { return r == ' ' || r == ',' })
		case cols != nil && strings.TrimSpace(l) != "":
			sep := " "
			if strings.Contains(l, ",") {
				sep = ","
			}
			vals := strings.Split(l, sep)
			row := map[string]string{}
			for i, c := range cols {
				if i < len(vals) {
					row[c] = vals[i]
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// server returns the row of server s1 of backend be in "show servers
// state" and "show stat".
func server(t *testing.T, sock string) (state, stat map[string]string) {
	t.Helper()
	for _, r := range table(haproxyRuntime(t, sock, "show servers state be")) {
		if r["srv_name"] == "s1" {
			state = r
		}
	}
	for _, r := range table(haproxyRuntime(t, sock, "show stat")) {
		if r["pxname"] == "be" && r["svname"] == "s1" {
			stat = r
		}
	}
	if state == nil || stat == nil {
		t.Fatalf("server s1 not found in haproxy's runtime API")
	}
	return state, stat
}

// TestHAProxyPollsTheAgent runs Debian's haproxy with a backend server
// whose agent-check points at our agent, and reads through haproxy's
// runtime API that it applies what the agent answers: NN% as the weight,
// drain and ready as the admin state. The agent requires a token, sent by
// haproxy's agent-send.
func TestHAProxyPollsTheAgent(t *testing.T) {
	bin := haproxyBin(t)
	rep := &report{r: Report{Capacity: f(75), Admin: agentcheck.AdminReady}}
	s, agent := start(t, Options{Report: rep.get, Token: "s3cret"})
	dir := t.TempDir()
	sock := filepath.Join(dir, "haproxy.sock")
	cfg := fmt.Sprintf(`global
    stats socket %s mode 600 level admin
    pidfile %s
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
backend be
    balance roundrobin
    server s1 127.0.0.1:9 weight 100 agent-check agent-addr 127.0.0.1 agent-port %d agent-inter 100ms agent-send "s3cret\n"
`, sock, filepath.Join(dir, "haproxy.pid"), agent.Port())
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-db", "-f", cfgPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("haproxy output:\n%s", logs.String())
		}
	})
	waitUntil := func(what string, ok func(state, stat map[string]string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(sock); err == nil {
				state, stat := server(t, sock)
				if ok(state, stat) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("haproxy never showed %s: state %v, stat status %s weight %s", what, state, stat["status"], stat["weight"])
				}
			} else if time.Now().After(deadline) {
				t.Fatalf("haproxy never opened its stats socket:\n%s", logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	adminDrain := func(state map[string]string) bool {
		v, _ := strconv.Atoi(state["srv_admin_state"])
		return v&0x08 != 0 // SRV_ADMF_FDRAIN
	}

	waitUntil("weight 75 of 100", func(st, _ map[string]string) bool {
		return st["srv_uweight"] == "75" && st["srv_iweight"] == "100" && !adminDrain(st)
	})
	rep.set(Report{Capacity: f(40), Admin: agentcheck.AdminReady})
	waitUntil("weight 40", func(st, stat map[string]string) bool { return st["srv_uweight"] == "40" && stat["weight"] == "40" })
	rep.set(Report{Capacity: f(40), Admin: agentcheck.AdminDrain})
	waitUntil("drain", func(st, stat map[string]string) bool {
		return adminDrain(st) && strings.HasPrefix(stat["status"], "DRAIN")
	})
	rep.set(Report{Capacity: f(90), Admin: agentcheck.AdminReady})
	waitUntil("ready at 90", func(st, stat map[string]string) bool {
		return !adminDrain(st) && st["srv_uweight"] == "90" && stat["weight"] == "90"
	})
	if st := s.Stats(); st.Answered < 4 || st.Refused != 0 {
		t.Errorf("agent stats %+v: haproxy's agent-send token should be accepted on every check", st)
	}
}
