package rsagent

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lvs-node/lvs-node/director/feedback"
	"github.com/lvs-node/lvs-node/internal/agentcheck"
	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/rsagent/agentserver"
)

func TestReportingConfig(t *testing.T) {
	good := `realserver:
  vips: [{address: 10.0.0.100, mode: dr}]
  agent: {listen: 0.0.0.0:3262, http: 0.0.0.0:9724, token_file: /etc/lvs-node/agent.token}
  load:
    interval: 2s
    combine: min
    sources:
      - {type: cpu}
      - {type: loadavg, max_per_core: 2.0}
      - {type: psi, resource: memory, max: 40}
      - {type: connections, ports: [80, 443], max: 5000}
      - {type: command, command: /usr/local/bin/capacity, timeout: 1s}
      - {type: command, command: [/usr/local/bin/capacity, --json]}
      - {type: file, path: /run/app/capacity}
      - {type: http, url: "http://127.0.0.1:8080/capacity", timeout: 1s}
`
	var c Config
	if _, err := config.DecodeValid("rs.yaml", []byte(good), &c, func(d *config.Doc) error { return Validate(&c, d) }); err != nil {
		t.Fatalf("the issue's example: %v", err)
	}
	rs := c.Realserver
	if rs.Agent.Listen != "0.0.0.0:3262" || rs.Load.Combine != "min" || len(rs.Load.Sources) != 8 {
		t.Fatalf("decoded %+v %+v", rs.Agent, rs.Load)
	}
	src := rs.Load.Sources
	if src[0].Timeout.D() != time.Second || src[1].MaxPerCore != 2 || src[3].Max != 5000 || src[3].Ports[1] != 443 {
		t.Errorf("sources %+v", src)
	}
	if src[4].Command.Shell != "/usr/local/bin/capacity" || len(src[5].Command.Argv) != 2 || src[5].Command.Argv[1] != "--json" {
		t.Errorf("commands %+v %+v", src[4].Command, src[5].Command)
	}

	bad := `realserver:
  vips: [{address: 10.0.0.100, mode: dr}]
  agent: {http: "9724", token_file: agent.token}
  load:
    interval: 10ms
    combine: median
    sources:
      - {type: cpu, ports: [80]}
      - {type: gpu}
      - {type: psi, resource: disk, max: 400}
      - {type: connections, max: 2.5}
      - {type: command, command: {run: x}}
      - {type: command, command: [capacity]}
      - {type: file, path: run/capacity}
      - {type: http, url: "ftp://x/"}
      - {type: loadavg, timeout: 1m}
`
	var b Config
	_, err := config.DecodeValid("rs.yaml", []byte(bad), &b, func(d *config.Doc) error { return Validate(&b, d) })
	want := []string{
		"rs.yaml:3:3: realserver.agent.listen: listen is required",
		"rs.yaml:3:11: realserver.agent.http: want host:port",
		"rs.yaml:3:25: realserver.agent.token_file: want an absolute path",
		"rs.yaml:5:5: realserver.load.interval: want at least 100ms",
		"rs.yaml:6:5: realserver.load.combine: want min or average",
		"rs.yaml:8:21: realserver.load.sources[0].ports: ports does not apply to a cpu source",
		"rs.yaml:9:10: realserver.load.sources[1].type: want cpu, loadavg, psi, connections, command, file or http, got \"gpu\"",
		"rs.yaml:10:21: realserver.load.sources[2].resource: want cpu, memory or io",
		"rs.yaml:10:37: realserver.load.sources[2].max: want the avg10 percentage",
		"rs.yaml:11:9: realserver.load.sources[3].ports: ports is required",
		"rs.yaml:11:29: realserver.load.sources[3].max: want a whole number of connections",
		"rs.yaml:12:34: realserver.load.sources[4].command: want a command line or a list of words",
		"rs.yaml:13:25: realserver.load.sources[5].command: the program of a command list must be an absolute path",
		"rs.yaml:14:22: realserver.load.sources[6].path: want an absolute path",
		"rs.yaml:15:22: realserver.load.sources[7].url: want an http:// or https:// URL",
		"rs.yaml:16:25: realserver.load.sources[8].timeout: want at most the load interval",
	}
	errs := config.AsErrors(err)
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(errs[i].Error(), w) {
			t.Errorf("error %d: %q, want %q", i, errs[i].Error(), w)
		}
	}
}

// reportingConfig is a real-server file with an agent on free ports and
// a file load source.
func reportingConfig(t *testing.T, state, capFile string) (string, netip.AddrPort, string) {
	t.Helper()
	agent, httpAddr := freePort(t), freePort(t)
	return `realserver:
  state_dir: ` + state + `
  watch_interval: 100ms
  vips: [{address: 10.0.0.100, mode: dr}]
  agent: {listen: "` + agent.String() + `", http: "` + httpAddr.String() + `"}
  load:
    interval: 100ms
    sources:
      - {type: file, path: ` + capFile + `}
      - {type: file, path: ` + capFile + `.missing}
`, agent, httpAddr.String()
}

func freePort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func TestDaemonAgentAndAdminState(t *testing.T) {
	f := newFake(t)
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	capFile := filepath.Join(tmp, "capacity")
	if err := os.WriteFile(capFile, []byte("60\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	body, agentAddr, httpAddr := reportingConfig(t, state, capFile)
	cfgPath := filepath.Join(tmp, "rs.yaml")
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(tmp, "rs.sock")
	poll := func() agentcheck.Reply {
		t.Helper()
		r, err := feedback.Poll(context.Background(), agentAddr, "", time.Second)
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		return r
	}
	start := func() (func(), *Metrics) {
		c, doc, err := LoadConfig(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		a := newAgent(t, f, c, doc)
		var logs syncBuf
		a.log = slog.New(slog.NewTextHandler(&logs, nil))
		m := NewMetrics()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- a.Run(ctx, RunOptions{Metrics: m, ConfigPath: cfgPath, Control: sock}) }()
		waitFor(t, 2*time.Second, "daemon ready", func() bool { return strings.Contains(logs.String(), "real server ready") })
		return func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
		}, m
	}
	stop, m := start()
	if r := poll(); r.String() != "up ready 60%" {
		t.Fatalf("reply %q, want up ready 60%% (the missing file skipped)", r.String())
	}
	if err := os.WriteFile(capFile, []byte("25\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "25%", func() bool { return poll().Weight == 25 })

	bg := context.Background()
	if out, err := RequestAdmin(bg, sock, agentcheck.AdminDrain); err != nil || !strings.Contains(out, "drain") {
		t.Fatalf("drain: %q %v", out, err)
	}
	if r := poll(); r.String() != "up drain 25%" {
		t.Fatalf("after drain: %q", r.String())
	}
	resp, err := http.Get("http://" + httpAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	var d agentserver.Details
	_ = json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if d.Admin != "drain" || d.Capacity == nil || *d.Capacity != 25 || len(d.Sources) != 2 || d.Sources[1].Error == "" {
		t.Errorf("details %+v", d)
	}
	if n, err := testutil.GatherAndCount(m.Registry(), agentserver.MetricSourceErrors); err != nil || n != 4 {
		t.Errorf("%d source error series, want 4", n)
	}

	// A reload that changes the agent is refused; the agent goes on.
	changed := strings.Replace(body, "    interval: 100ms", "    interval: 200ms", 1)
	if err := os.WriteFile(cfgPath, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RequestReload(bg, sock); err == nil || !strings.Contains(err.Error(), "realserver.load: agent and load cannot change on reload") {
		t.Errorf("reload: %v", err)
	}
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	// The admin state survives a restart.
	stop()
	if _, err := feedback.Poll(bg, agentAddr, "", 200*time.Millisecond); err == nil {
		t.Error("the agent still answers after stop")
	}
	stop, _ = start()
	defer stop()
	waitFor(t, 2*time.Second, "the agent after restart", func() bool {
		_, err := feedback.Poll(bg, agentAddr, "", 200*time.Millisecond)
		return err == nil
	})
	if r := poll(); r.Admin != agentcheck.AdminDrain {
		t.Fatalf("after restart: %q, want drain", r.String())
	}
	if _, err := RequestAdmin(bg, sock, agentcheck.AdminReady); err != nil {
		t.Fatal(err)
	}
	if r := poll(); r.String() != "up ready 25%" {
		t.Fatalf("after ready: %q", r.String())
	}
	if _, err := RequestAdmin(bg, sock, agentcheck.AdminMaint); err != nil {
		t.Fatal(err)
	}
	if r := poll(); r.Admin != agentcheck.AdminMaint {
		t.Fatalf("after maint: %q", r.String())
	}
	// The status shows what the agent answers and from what.
	st, err := RequestStatus(bg, sock)
	if err != nil {
		t.Fatal(err)
	}
	if a := st.Agent; a == nil || a.Reply != "up maint 25%" || a.Admin != "maint" || a.Answered == 0 || len(a.Sources) != 2 {
		t.Errorf("status agent %+v", st.Agent)
	}
	if txt := st.Text(); !strings.Contains(txt, `answers "up maint 25%" (capacity 25%, admin maint`) {
		t.Errorf("status text:\n%s", txt)
	}
}

func TestAdminStoreKeepsStateWhenTheFileCannotBeWritten(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenAdminStore(dir)
	if err != nil || s.Get() != agentcheck.AdminReady {
		t.Fatalf("fresh store: %v %v", s.Get(), err)
	}
	if err := s.Set(agentcheck.AdminDrain); err != nil {
		t.Fatal(err)
	}
	// A state dir that cannot be written: Set fails, the state stays.
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if os.Geteuid() != 0 {
		if err := s.Set(agentcheck.AdminReady); err == nil || s.Get() != agentcheck.AdminDrain {
			t.Errorf("Set on a read-only dir: %v, state %s", err, s.Get())
		}
	}
	// A damaged file is an error, not a silent ready.
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, AdminStateFile), []byte(`{"admin": "drai`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAdminStore(dir); err == nil {
		t.Error("a damaged admin state file was accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, AdminStateFile), []byte(`{"admin": "sleep"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAdminStore(dir); err == nil {
		t.Error("an unknown admin state was accepted")
	}
}

func TestAdminCommandsWithoutAgent(t *testing.T) {
	var r *Reporter
	h := r.ControlHandler(func(context.Context, string) (string, error) { return "passed", nil }, discardLogger())
	if _, err := h(context.Background(), "drain"); err == nil || !strings.Contains(err.Error(), "no agent") {
		t.Errorf("drain without agent: %v", err)
	}
	if out, err := h(context.Background(), "status"); out != "passed" || err != nil {
		t.Errorf("status: %q %v", out, err)
	}
}

func TestTokenFileMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readAgentToken(p); err == nil || !strings.Contains(err.Error(), "accessible by others") {
		t.Errorf("world-readable token: %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := readAgentToken(p); err != nil || tok != "s3cret" {
		t.Errorf("token %q %v", tok, err)
	}
}
