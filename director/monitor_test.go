package director

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/healthz"
	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
)

// backend is a TCP listener on a loopback address that can be stopped
// and started again on the same address: a real server's service.
type backend struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	ln   net.Listener
}

func newBackend(t *testing.T, ip string, port int) *backend {
	b := &backend{t: t, addr: net.JoinHostPort(ip, fmt.Sprint(port))}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *backend) port() int {
	_, p, _ := net.SplitHostPort(b.addr)
	var n int
	fmt.Sscan(p, &n)
	return n
}

func (b *backend) start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		b.t.Fatal(err)
	}
	b.ln, b.addr = ln, ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func (b *backend) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln != nil {
		b.ln.Close()
		b.ln = nil
	}
}

// agent answers the agent-check protocol with the reply it holds.
type agent struct {
	reply atomic.Value
	*backend
}

func newAgent(t *testing.T, ip string, port int, reply string) *agent {
	a := &agent{backend: &backend{t: t, addr: net.JoinHostPort(ip, fmt.Sprint(port))}}
	a.reply.Store(reply)
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	a.ln, a.addr = ln, ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", a.reply.Load())
			c.Close()
		}
	}()
	t.Cleanup(a.stop)
	return a
}

// fastInputs batch transitions quickly, for tests.
func fastInputs() MonitorOptions {
	return MonitorOptions{Health: healthz.Options{BatchWindow: 10 * time.Millisecond}}
}

func (d *daemonRig) waitTable(t *testing.T, timeout time.Duration, wants ...string) {
	t.Helper()
	waitFor(t, timeout, func() bool {
		s := d.k.String()
		for _, w := range wants {
			if strings.HasPrefix(w, "!") {
				if strings.Contains(s, w[1:]) {
					return false
				}
			} else if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	}, func() string { return d.k.String() + "\n" + d.logs.String() })
}

func (d *daemonRig) status(t *testing.T) *Status {
	t.Helper()
	st, err := RequestStatus(t.Context(), d.sock)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func serverStatus(t *testing.T, st *Status, service, addr string) RealServerStatus {
	t.Helper()
	for _, s := range st.Services {
		for _, r := range s.RealServers {
			if s.Name == service && r.Address == addr {
				return r
			}
		}
	}
	t.Fatalf("status lacks %s %s: %+v", service, addr, st)
	return RealServerStatus{}
}

const healthBody = `virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    forwarding: nat
    health_check: {type: tcp, interval: 200ms, timeout: 100ms, rise: 2, fall: 2}
    real_servers:
      - {address: 127.0.0.11, port: %d, weight: 100}
      - {address: 127.0.0.12, port: %d, weight: 100}
`

// startChecked starts a daemon on r checking two loopback backends and
// waits until both serve.
func startChecked(t *testing.T, r *rig) (d *daemonRig, b1, b2 *backend, body string) {
	t.Helper()
	b1, b2 = newBackend(t, "127.0.0.11", 0), newBackend(t, "127.0.0.12", 0)
	body = fmt.Sprintf(healthBody, b1.port(), b2.port())
	d = startDaemonOn(t, r, "", body, fastInputs())
	d.waitTable(t, 3*time.Second, fmt.Sprintf("127.0.0.11:%d -m -w 100", b1.port()), fmt.Sprintf("127.0.0.12:%d -m -w 100", b2.port()))
	return d, b1, b2, body
}

// TestHealthChecksDriveWeights: new real servers get no traffic before
// rise checks pass; a stopped one is quiesced within fall x interval +
// timeout; the verdicts are kept across a restart, which changes nothing
// in the kernel; a started one comes back.
func TestHealthChecksDriveWeights(t *testing.T) {
	b1 := newBackend(t, "127.0.0.11", 0)
	b2 := newBackend(t, "127.0.0.12", 0)
	r := newRig(t)
	body := fmt.Sprintf(healthBody, b1.port(), b2.port())
	d := startDaemonOn(t, r, "", body, fastInputs())
	l1 := fmt.Sprintf("-a -t 10.0.0.100:80 -r 127.0.0.11:%d -m -w ", b1.port())
	l2 := fmt.Sprintf("-a -t 10.0.0.100:80 -r 127.0.0.12:%d -m -w ", b2.port())
	// Pending at first: weight 0, then up after two passing checks.
	if s := d.k.String(); !strings.Contains(s, l1+"0\n") || !strings.Contains(s, l2+"0\n") {
		t.Fatalf("new real servers got weight before their checks passed:\n%s", s)
	}
	d.waitTable(t, 3*time.Second, l1+"100\n", l2+"100\n")

	b2.stop()
	stopped := time.Now()
	d.waitTable(t, 3*time.Second, l2+"0\n")
	took := time.Since(stopped)
	if limit := 2*200*time.Millisecond + 100*time.Millisecond + 300*time.Millisecond; took > limit {
		t.Errorf("quiesced after %v, want within fall x interval + timeout + slack (%v)", took, limit)
	}
	st := serverStatus(t, d.status(t), "web", fmt.Sprintf("127.0.0.12:%d", b2.port()))
	if st.Health != "down" || !strings.Contains(st.Reason, "down: connect: connection refused after 2 checks") || st.EffectiveWeight != 0 || st.ConfiguredWeight != 100 {
		t.Errorf("status of the stopped server: %+v", st)
	}
	if n := strings.Count(d.logs.String(), "msg=\"health check down\""); n != 1 {
		t.Errorf("the transition was logged %d times:\n%s", n, d.logs)
	}
	if _, err := os.Stat(filepath.Join(r.dir, healthFile)); err != nil {
		t.Fatalf("verdicts not kept: %v", err)
	}

	// Restart: nothing changes in the kernel, up stays up and down stays
	// down until the checks say otherwise.
	d.stop(t)
	before, ops := d.k.String(), d.k.Counts().Ops
	d = startDaemonOn(t, r, d.sock, body, fastInputs())
	time.Sleep(300 * time.Millisecond)
	if after := d.k.String(); after != before || d.k.Counts().Ops != ops {
		t.Fatalf("a restart changed the table:\n%s\nwas\n%s\n%s", after, before, d.logs)
	}
	b2.start()
	d.waitTable(t, 3*time.Second, l1+"100\n", l2+"100\n")
}

// TestSorryServerComesAndGoes: the sorry server is added when every real
// server is down and leaves when one is back; the diff never deletes it
// as a hand-made entry meanwhile (resyncs run every second).
func TestSorryServerComesAndGoes(t *testing.T) {
	b1 := newBackend(t, "127.0.0.11", 0)
	b2 := newBackend(t, "127.0.0.12", 0)
	body := fmt.Sprintf(healthBody, b1.port(), b2.port()) + "    sorry_server: {address: 127.0.0.250, port: 8080}\n"
	d := startDaemonOn(t, newRig(t), "", body, fastInputs())
	sorry := "-a -t 10.0.0.100:80 -r 127.0.0.250:8080 -m -w 1"
	// Pending at first: nothing serves, so the sorry server does.
	if s := d.k.String(); !strings.Contains(s, sorry) {
		t.Fatalf("no sorry server while no real server serves:\n%s", s)
	}
	d.waitTable(t, 3*time.Second, "!"+sorry)
	b1.stop()
	b2.stop()
	d.waitTable(t, 3*time.Second, sorry)
	time.Sleep(1500 * time.Millisecond) // a resync
	if s := d.k.String(); !strings.Contains(s, sorry) {
		t.Fatalf("a resync removed the sorry server:\n%s", s)
	}
	st := d.status(t)
	if q := st.Services[0].Quorum; q == nil || q.Met || !st.Services[0].SorryServer.Active {
		t.Errorf("status: %+v %+v", st.Services[0].Quorum, st.Services[0].SorryServer)
	}
	if !strings.Contains(d.logs.String(), "no real server serving") && !strings.Contains(d.logs.String(), "the sorry server takes new connections") {
		t.Errorf("quorum loss not logged:\n%s", d.logs)
	}
	b1.start()
	d.waitTable(t, 3*time.Second, "!"+sorry, fmt.Sprintf("-r 127.0.0.11:%d -m -w 100", b1.port()))
}

// TestReloadKeepsUnchangedChecks: a reload that changes one real server's
// check keeps the state of the others; the changed one keeps its state
// too, and a real server new to the file starts pending.
func TestReloadKeepsUnchangedChecks(t *testing.T) {
	d, b1, b2, body := startChecked(t, newRig(t))
	b3 := newBackend(t, "127.0.0.13", 0)
	b1.stop() // down; it must stay down across the reload
	d.waitTable(t, 3*time.Second, fmt.Sprintf("127.0.0.11:%d -m -w 0", b1.port()))
	changed := strings.Replace(body, fmt.Sprintf("port: %d, weight: 100}", b2.port()),
		fmt.Sprintf("port: %d, weight: 100, health_check: {rise: 5}}\n      - {address: 127.0.0.13, port: %d, weight: 100}", b2.port(), b3.port()), 1)
	d.write(t, changed)
	if err := RequestReload(t.Context(), d.sock); err != nil {
		t.Fatalf("reload: %v\n%s", err, d.logs)
	}
	s := d.k.String()
	for _, want := range []string{
		fmt.Sprintf("127.0.0.11:%d -m -w 0\n", b1.port()),
		fmt.Sprintf("127.0.0.12:%d -m -w 100\n", b2.port()),
		fmt.Sprintf("127.0.0.13:%d -m -w 0\n", b3.port()),
	} {
		if !strings.Contains(s, want) {
			t.Errorf("after the reload the table lacks %q:\n%s", want, s)
		}
	}
	d.waitTable(t, 3*time.Second, fmt.Sprintf("127.0.0.13:%d -m -w 100", b3.port()))
	if s := d.k.String(); !strings.Contains(s, fmt.Sprintf("127.0.0.11:%d -m -w 0\n", b1.port())) {
		t.Errorf("the down server came back without its check passing:\n%s", s)
	}
}

// TestCheckAddedToServingServer: adding a health check to a service that
// serves does not take its real servers out while the check has no
// verdict.
func TestCheckAddedToServingServer(t *testing.T) {
	b1 := newBackend(t, "127.0.0.11", 0)
	body := fmt.Sprintf(`virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    forwarding: nat
    real_servers: [{address: 127.0.0.11, port: %d, weight: 100}]
`, b1.port())
	d := startDaemonOn(t, newRig(t), "", body, fastInputs())
	line := fmt.Sprintf("127.0.0.11:%d -m -w 100\n", b1.port())
	d.waitTable(t, time.Second, line)
	ops := d.k.Counts().Ops
	d.write(t, strings.Replace(body, "    real_servers", "    health_check: {type: tcp, interval: 200ms, timeout: 100ms}\n    real_servers", 1))
	if err := RequestReload(t.Context(), d.sock); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if s := d.k.String(); !strings.Contains(s, line) || d.k.Counts().Ops != ops {
		t.Fatalf("adding a check changed a serving real server:\n%s", s)
	}
}

// TestLoadFeedbackDrivesWeights: the agent's capacity scales the weight,
// drain sets 0, a dead agent brings the configured weight back after
// stale_after, and agent_health makes "down" a failed health check.
func TestLoadFeedbackDrivesWeights(t *testing.T) {
	a1 := newAgent(t, "127.0.0.11", 0, "up 100%")
	port := a1.port()
	a2 := newAgent(t, "127.0.0.12", port, "up 100%")
	body := fmt.Sprintf(`virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    feedback: {interval: 100ms, timeout: 50ms, stale_after: 500ms, smoothing: 0, port: %d, agent_health: true}
    real_servers:
      - {address: 127.0.0.11, weight: 100}
      - {address: 127.0.0.12, weight: 100}
`, port)
	d := startDaemonOn(t, newRig(t), "", body, fastInputs())
	l1, l2 := "-r 127.0.0.11:80 -g -w ", "-r 127.0.0.12:80 -g -w "
	a1.reply.Store("up 25%")
	d.waitTable(t, 2*time.Second, l1+"25\n", l2+"100\n")
	st := serverStatus(t, d.status(t), "web", "127.0.0.11:80")
	if st.Capacity == nil || *st.Capacity != 0.25 || !strings.HasPrefix(st.Reason, "capacity 25%") || st.Agent == nil || st.Agent.Weight != 25 {
		t.Errorf("status: %+v", st)
	}
	a1.reply.Store("drain")
	d.waitTable(t, 2*time.Second, l1+"0\n", l2+"100\n")
	if st := serverStatus(t, d.status(t), "web", "127.0.0.11:80"); st.Reason != "agent: drain" {
		t.Errorf("drain reason %q", st.Reason)
	}
	a1.reply.Store("down")
	time.Sleep(300 * time.Millisecond)
	if st := serverStatus(t, d.status(t), "web", "127.0.0.11:80"); st.Health != "down" || !strings.Contains(st.HealthReason, "agent reports down") {
		t.Errorf("agent down with agent_health: %+v", st)
	}
	a1.stop()
	d.waitTable(t, 3*time.Second, l1+"100\n", l2+"100\n")
	if st := serverStatus(t, d.status(t), "web", "127.0.0.11:80"); st.Agent == nil || !st.Agent.Stale || st.Health == "down" {
		t.Errorf("stale agent: %+v", st)
	}
	if strings.Contains(d.logs.String(), l2+"0") || strings.Contains(d.logs.String(), "127.0.0.12:80 -g -w 2") {
		t.Errorf("the other real server moved:\n%s", d.logs)
	}
	_ = a2
}

// TestOperatorDrainSurvivesRestart: lvs-node director drain over the
// socket sets 0, survives a resync and a restart, and ready lifts it.
func TestOperatorDrainSurvivesRestart(t *testing.T) {
	r := newRig(t)
	d := startDaemonOn(t, r, "", twoServices, MonitorOptions{})
	lines, err := RequestOverride(t.Context(), d.sock, true, "10.0.0.12", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0] != "web 10.0.0.12:80: drained, weight 0" {
		t.Errorf("drain answered %q", lines)
	}
	if _, err := RequestOverride(t.Context(), d.sock, true, "10.0.0.99", ""); err == nil || !strings.Contains(err.Error(), "no real server 10.0.0.99") {
		t.Errorf("drain of an unknown server: %v", err)
	}
	if _, err := RequestOverride(t.Context(), d.sock, true, "10.0.0.12:80", "nope"); err == nil || !strings.Contains(err.Error(), `no virtual service "nope"`) {
		t.Errorf("drain in an unknown service: %v", err)
	}
	time.Sleep(1200 * time.Millisecond) // a resync
	d.stop(t)
	d = startDaemonOn(t, r, d.sock, twoServices, MonitorOptions{})
	if s := d.k.String(); strings.Count(s, "-r 10.0.0.12:80 -g -w 0") != 1 {
		t.Fatalf("drain lost:\n%s", s)
	}
	if st := serverStatus(t, d.status(t), "web", "10.0.0.12:80"); !st.Drained || st.Reason != "drained by the operator" {
		t.Errorf("status: %+v", st)
	}
	if _, err := RequestOverride(t.Context(), d.sock, false, "10.0.0.12:80", "web"); err != nil {
		t.Fatal(err)
	}
	if s := d.k.String(); !strings.Contains(s, "-r 10.0.0.12:80 -g -w 100\n") {
		t.Errorf("ready did not lift the drain:\n%s", s)
	}
}

// TestKernelRefusedReloadRestoresChecks: a reload the kernel refuses
// puts the previous checks back: the real server it would have added is
// not checked, the others keep their verdicts.
func TestKernelRefusedReloadRestoresChecks(t *testing.T) {
	d, _, _, body := startChecked(t, newRig(t))
	b3 := newBackend(t, "127.0.0.13", 0)
	before := d.k.String()
	d.write(t, body+fmt.Sprintf("      - {address: 127.0.0.13, port: %d, weight: 100}\n", b3.port()))
	d.k.FailOp(0, ipvstest.ErrInjected)
	if err := RequestReload(t.Context(), d.sock); err == nil {
		t.Fatal("the kernel refused the reload, yet it succeeded")
	}
	if after := d.k.String(); after != before {
		t.Fatalf("a refused reload changed the table:\n%s\nwas\n%s", after, before)
	}
	st := d.status(t)
	if n := len(st.Services[0].RealServers); n != 2 {
		t.Fatalf("status lists %d real servers after a refused reload", n)
	}
	for _, r := range st.Services[0].RealServers {
		if r.Health != "up" || r.Check == nil {
			t.Errorf("after a refused reload: %+v", r)
		}
	}
	if n := len(d.daemon.mon.mgr.Status()); n != 2 {
		t.Errorf("%d checks after a refused reload, want the previous 2", n)
	}
	if n := d.rig.engine.Counters().ReloadErrors; n != 1 {
		t.Errorf("%d reload errors counted", n)
	}
}

// TestDamagedHealthFile: a health file that cannot be read is reported
// and the real servers serving in the kernel keep serving.
func TestDamagedHealthFile(t *testing.T) {
	r := newRig(t)
	d, _, _, body := startChecked(t, r)
	d.stop(t)
	if err := os.WriteFile(filepath.Join(r.dir, healthFile), []byte(`{"servers": [{"server": `), 0o600); err != nil {
		t.Fatal(err)
	}
	before, ops := d.k.String(), d.k.Counts().Ops
	d = startDaemonOn(t, r, d.sock, body, fastInputs())
	time.Sleep(300 * time.Millisecond)
	if after := d.k.String(); after != before || d.k.Counts().Ops != ops {
		t.Fatalf("a damaged health file changed the table:\n%s\nwas\n%s", after, before)
	}
	if !strings.Contains(d.logs.String(), "health verdicts of the last run cannot be read") {
		t.Errorf("the damaged file was not reported:\n%s", d.logs)
	}
}

// TestOnceAppliesKeptVerdicts: lvs-node director --once runs no checks:
// real servers without a kept verdict get their configured weight, one
// kept down stays out.
func TestOnceAppliesKeptVerdicts(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, fmt.Sprintf(healthBody, 8001, 8002))
	if err := os.WriteFile(filepath.Join(r.dir, healthFile), []byte(`{"servers": [
  {"server": {"Service": "web", "Addr": "127.0.0.12", "Port": 8002}, "state": "down", "reason": "HTTP 503 after 3 checks", "since": "2026-01-01T00:00:00Z"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RestoreHealth(t.Context(), r.engine, cfg, true, nil); err != nil {
		t.Fatal(err)
	}
	r.apply(t, cfg)
	if s := r.k.String(); !strings.Contains(s, "-r 127.0.0.11:8001 -m -w 100") || !strings.Contains(s, "-r 127.0.0.12:8002 -m -w 0") {
		t.Errorf("--once table:\n%s", s)
	}
	// Without assumeUp (a dry run, a start): pending.
	r2 := newRig(t)
	if err := RestoreHealth(t.Context(), r2.engine, r2.config(t, fmt.Sprintf(healthBody, 8001, 8002)), false, nil); err != nil {
		t.Fatal(err)
	}
	r2.apply(t, r2.config(t, fmt.Sprintf(healthBody, 8001, 8002)))
	if s := r2.k.String(); !strings.Contains(s, "-r 127.0.0.11:8001 -m -w 0") {
		t.Errorf("a start without verdicts served unchecked servers:\n%s", s)
	}
}
