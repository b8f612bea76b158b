package rsagent

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

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

func TestDaemonRepairsOnceAndRestores(t *testing.T) {
	f := newFake(t)
	before := f.String()
	c, doc := loadYAML(t, t.TempDir(), `realserver:
  state_dir: STATE
  restore_on_exit: true
  watch_interval: 100ms
  vips:
    - {address: 10.0.0.100, mode: dr}
    - {address: 10.0.0.101, mode: tun}
`)
	var logs syncBuf
	a := newAgent(t, f, c, doc)
	a.log = slog.New(slog.NewTextHandler(&logs, nil))
	m := NewMetrics()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx, RunOptions{Metrics: m}) }()
	vip := Addr{Dev: "lo", Prefix: mustPrefix("10.0.0.100/32")}
	has := func() bool { s, _ := f.Snapshot(); return s.HasAddr(vip) }
	waitFor(t, 2*time.Second, "daemon ready", func() bool { return strings.Contains(logs.String(), "real server ready") })
	afterUp := f.String()

	// Removed by hand: back after the notification.
	if err := f.Del(vip); err != nil {
		t.Fatal(err)
	}
	f.notify()
	waitFor(t, 2*time.Second, "VIP repaired", has)
	// tunl0 set down without a notification: back within the interval.
	if err := f.Del(LinkUp{Name: tunl0}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "tunl0 up", func() bool { s, _ := f.Snapshot(); l, _ := s.Link(tunl0); return l.Up })
	time.Sleep(300 * time.Millisecond) // more passes: nothing to log
	if got := f.String(); got != afterUp {
		t.Errorf("state after repairs:\n%s\nwant:\n%s", got, afterUp)
	}
	for _, line := range []string{`msg=repaired change="ip addr add 10.0.0.100/32 dev lo label lo:lvs"`, `msg=repaired change="ip link set tunl0 up"`} {
		if n := strings.Count(logs.String(), line); n != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", line, n, logs.String())
		}
	}

	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP lvs_node_realserver_repairs_total Changes made after the first apply to bring the host back to its configured state.
# TYPE lvs_node_realserver_repairs_total counter
lvs_node_realserver_repairs_total 2
# HELP lvs_node_realserver_vips Configured VIPs currently bound on this host (dr and tun).
# TYPE lvs_node_realserver_vips gauge
lvs_node_realserver_vips 2
`), "lvs_node_realserver_repairs_total", "lvs_node_realserver_vips"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(m.Registry()); err != nil || len(problems) != 0 {
		t.Errorf("metric lint: %v %+v", err, problems)
	}
	srv := httptest.NewServer(m.Handler(nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(body.String(), "\nlvs_node_realserver_repairs_total 2\n") {
		t.Errorf("GET /metrics lacks the repairs counter:\n%s", body.String())
	}
	req, _ := http.NewRequest(http.MethodHead, srv.URL+"/metrics", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD to metrics: %s", resp.Status)
	}
	resp, err = http.Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to metrics: %s", resp.Status)
	}

	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(before, "ip link set eth0 up\n", "ip link set eth0 up\nip link add tunl0 type ipip\nip link set tunl0 down\n", 1) +
		sysLines([4]string{"tunl0", "0", "0", "2"})
	if got := f.String(); got != sortSysctls(want) {
		t.Errorf("after exit:\n%s\nwant:\n%s", got, sortSysctls(want))
	}
}

// TestDaemonStopLeavesHostRestartAdopts: stopping the daemon (a restart,
// an upgrade) leaves the host serving; a new daemon on the same state
// directory adopts what it finds and changes nothing; down then removes
// everything, so ownership survived the restart.
func TestDaemonStopLeavesHostRestartAdopts(t *testing.T) {
	f := newFake(t)
	before := f.String()
	c, doc := loadYAML(t, t.TempDir(), `realserver:
  state_dir: STATE
  watch_interval: 100ms
  vips:
    - {address: 10.0.0.100, mode: dr}
    - {address: 10.0.0.101, mode: tun}
    - {address: 10.0.0.102, mode: dr, interface: dummy}
`)
	run := func() string {
		t.Helper()
		var logs syncBuf
		a := newAgent(t, f, c, doc)
		a.log = slog.New(slog.NewTextHandler(&logs, nil))
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- a.Run(ctx, RunOptions{}) }()
		waitFor(t, 2*time.Second, "daemon ready", func() bool { return strings.Contains(logs.String(), "real server ready") })
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		return logs.String()
	}
	run()
	applied := f.String()
	if applied == before {
		t.Fatal("nothing applied")
	}
	adds := f.adds
	logs := run()
	if got := f.String(); got != applied {
		t.Errorf("a restart changed the host:\n%s\nwant:\n%s", got, applied)
	}
	if f.adds != adds || !strings.Contains(logs, `msg="real server ready" changes=0`) || !strings.Contains(logs, "leaving the configuration in place") {
		t.Errorf("the restarted daemon made %d changes:\n%s", f.adds-adds, logs)
	}
	if _, err := newAgent(t, f, c, doc).Down(); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(before, "ip link set eth0 up\n", "ip link set eth0 up\nip link add tunl0 type ipip\nip link set tunl0 down\n", 1) +
		sysLines([4]string{"tunl0", "0", "0", "2"})
	if got := f.String(); got != sortSysctls(want) {
		t.Errorf("after down:\n%s\nwant:\n%s", got, sortSysctls(want))
	}
}
