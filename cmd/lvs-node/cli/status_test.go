package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
)

// runDirector runs a director daemon on a test kernel with body as its
// virtual services and returns its control socket once it answers (and,
// with ready, once it is ready).
func runDirector(t *testing.T, k *ipvstest.Kernel, body string, ready bool) string {
	t.Helper()
	dir := t.TempDir()
	sockDir, err := os.MkdirTemp("", "lvss")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "d.sock")
	path := filepath.Join(dir, "director.yaml")
	cfgText := fmt.Sprintf("director: {state_dir: %s}\nlisten: {metrics: \"\", control: %s}\nvirtual_services:\n%s", dir, sock, body)
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := director.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	e := director.NewEngine(dir, director.Deps{Kernel: k})
	d := &director.Daemon{Path: path, Engine: e, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st, err := director.RequestStatus(ctx, sock); err == nil && (st.Ready || !ready) {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatal("the director did not open its socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const statusServices = `  - name: web
    vip: 10.0.0.100
    port: 80
    scheduler: wrr
    sorry_server: {address: 10.0.0.250}
    real_servers:
      - {address: 10.0.0.11, weight: 100}
      - {address: 10.0.0.12, weight: 50}
  - name: mail
    fwmark: 25
    real_servers: [{address: 10.0.0.21}]
`

// TestStatusDirector: the table lines up, names every real server with
// its weights and why they differ, and --json is the director's status.
func TestStatusDirector(t *testing.T) {
	sock := runDirector(t, ipvstest.New(), statusServices, true)
	code, out, errOut := runCLI(t, "director", "drain", "10.0.0.12", "--socket", sock)
	if code != 0 || out != "web 10.0.0.12:80: drained, weight 0\n" {
		t.Fatalf("drain: %d %q %q", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "status", "--role", "director", "--socket", sock)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour without a terminal:\n%s", out)
	}
	lines := strings.Split(out, "\n")
	var header, rs11, rs12 string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "  REAL SERVER"):
			if header == "" {
				header = l
			}
		case strings.HasPrefix(l, "  10.0.0.11:80"):
			rs11 = l
		case strings.HasPrefix(l, "  10.0.0.12:80"):
			rs12 = l
		}
	}
	for _, want := range []string{"director  ready  ha standalone", "web  TCP 10.0.0.100:80  wrr", "serving 1 (min 1) met", "sorry 10.0.0.250:80 standby", "mail  FWM 25  wlc"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(rs12, "50 -> 0") || !strings.Contains(rs12, "drained by the operator") || !strings.Contains(rs11, "unchecked") {
		t.Errorf("real server lines:\n%s\n%s", rs11, rs12)
	}
	// Aligned: each column starts where its header does.
	for _, col := range []string{"HEALTH", "WEIGHT", "WHY"} {
		at := strings.Index(header, col)
		for _, l := range []string{rs11, rs12} {
			if at < 0 || len(l) <= at || l[at-1] != ' ' || l[at] == ' ' {
				t.Errorf("column %s not aligned:\n%s\n%s", col, header, l)
			}
		}
	}

	code, out, _ = runCLI(t, "status", "--role", "director", "--socket", sock, "--json")
	var st struct {
		Director struct {
			Ready    bool `json:"ready"`
			Services []struct {
				Name        string `json:"name"`
				RealServers []struct {
					Address string `json:"address"`
					Weight  int    `json:"effective_weight"`
					Reason  string `json:"reason"`
					Drained bool   `json:"drained"`
				} `json:"real_servers"`
			} `json:"services"`
		} `json:"director"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("--json: %v %d\n%s", err, code, out)
	}
	if r := st.Director.Services[0].RealServers[1]; !st.Director.Ready || r.Address != "10.0.0.12:80" || r.Weight != 0 || !r.Drained {
		t.Errorf("--json: %+v", st)
	}
	code, out, _ = runCLI(t, "director", "ready", "10.0.0.12:80", "--service", "web", "--socket", sock)
	if code != 0 || out != "web 10.0.0.12:80: ready, weight 50\n" {
		t.Errorf("ready: %d %q", code, out)
	}
	if code, _, errOut := runCLI(t, "director", "drain", "10.0.0.99", "--socket", sock); code != 1 || !strings.Contains(errOut, "no real server 10.0.0.99") {
		t.Errorf("drain of an unknown server: %d %q", code, errOut)
	}
}

// TestStatusNotReady: a director whose kernel refuses its table answers,
// and status exits 3.
func TestStatusNotReady(t *testing.T) {
	k := ipvstest.New()
	k.FailTable(errors.New("netlink: no such file or directory"))
	sock := runDirector(t, k, statusServices, false)
	code, out, errOut := runCLI(t, "status", "--role", "director", "--socket", sock)
	if code != exitNotReady || !strings.Contains(out, "NOT READY") || !strings.Contains(errOut, "not ready") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestStatusNothingRuns: without daemons status says so and exits 1.
func TestStatusNothingRuns(t *testing.T) {
	code, _, errOut := runCLI(t, "status", "--role", "director", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	if code != 1 || !strings.Contains(errOut, "director status: reach the daemon") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		5 * time.Second: "5s ago", 3 * time.Minute: "3m ago", 5 * time.Hour: "5h ago", 72 * time.Hour: "3d ago", -time.Second: "just now",
	} {
		if got := ago(now, now.Add(-d)); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}
