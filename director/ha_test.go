package director

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
)

// fakeAnnouncer records what it was asked to announce; it fails like
// BIRD does when told to (not answering, refusing).
type fakeAnnouncer struct {
	mu    sync.Mutex
	vips  []netip.Addr
	calls int
	fail  error
}

func (f *fakeAnnouncer) Announce(_ context.Context, vips []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return f.fail
	}
	f.vips = slices.Clone(vips)
	return nil
}

func (f *fakeAnnouncer) Status(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "BIRD fake", f.fail
}

func (f *fakeAnnouncer) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprint(f.vips)
}

func (f *fakeAnnouncer) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

const haTwoVIPs = `virtual_services:
  - name: web
    vip: 192.0.2.10
    port: 80
    scheduler: mh
    real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]
  - name: web-tls
    vip: 192.0.2.10
    port: 443
    scheduler: mh
    real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]
  - name: dns
    vip: 192.0.2.20
    protocol: udp
    port: 53
    real_servers: [{address: 10.0.0.21}]
sync_daemon: {interface: eth1, sync_id: 7}
announce: {min_up: 1}
`

type haRig struct {
	*rig
	sync *ipvstest.Sync
	ann  *fakeAnnouncer
	ha   *HA
	cfg  *Config
}

func newHARig(t *testing.T, body string) *haRig {
	t.Helper()
	r := &haRig{rig: newRig(t), sync: ipvstest.NewSync("eth0", "eth1"), ann: &fakeAnnouncer{}}
	r.cfg = r.config(t, body)
	r.apply(t, r.cfg)
	r.newHA()
	return r
}

// newHA gives the rig a new controller over the same engine, kernel and
// state dir: a restarted daemon.
func (r *haRig) newHA() {
	r.ha = NewHA(r.engine, r.dir, nil)
	r.ha.SetSyncKernel(r.sync)
	r.ha.NewAnnouncer = func(*AnnounceConfig) Announcer { return r.ann }
}

// start runs the controller until the test ends (or stop is called).
func (r *haRig) start(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.ha.Run(ctx, r.cfg) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func (r *haRig) daemons(t *testing.T) string {
	t.Helper()
	ds, err := r.sync.SyncDaemons(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%s/%s/%d", d.State, d.Interface, d.SyncID))
	}
	return strings.Join(s, " ")
}

// eventually waits up to 3 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHASyncFollowsRole(t *testing.T) {
	r := newHARig(t, haTwoVIPs)
	r.start(t)
	ctx := context.Background()
	eventually(t, "standalone daemons", func() bool { return r.daemons(t) == "master/eth1/7 backup/eth1/7" })
	for _, c := range []struct {
		role Role
		want string
	}{{Backup, "backup/eth1/7"}, {Master, "master/eth1/7 backup/eth1/7"}, {Fault, "backup/eth1/7"}, {Master, "master/eth1/7 backup/eth1/7"}} {
		// SetRole applies before it returns: keepalived's notify script
		// ends once the sync daemon follows.
		if err := r.ha.SetRole(ctx, c.role); err != nil {
			t.Fatal(err)
		}
		if got := r.daemons(t); got != c.want {
			t.Errorf("role %s: daemons %q, want %q", c.role, got, c.want)
		}
		if r.engine.Inputs().Role != c.role {
			t.Errorf("engine role %s, want %s", r.engine.Inputs().Role, c.role)
		}
	}
	// The role survives a restart: keepalived will not tell it again.
	if err := r.ha.SetRole(ctx, Backup); err != nil {
		t.Fatal(err)
	}
	r.restart()
	r.apply(t, r.cfg)
	r.newHA()
	r.start(t)
	eventually(t, "the saved role", func() bool { return r.engine.Inputs().Role == Backup })
	if got := r.daemons(t); got != "backup/eth1/7" {
		t.Errorf("after restart: %q", got)
	}
	// A sync daemon stopped behind lvs-node's back comes back.
	if err := r.sync.StopSync(ctx, ipvs.SyncBackup); err != nil {
		t.Fatal(err)
	}
	r.ha.work.Lock()
	r.ha.syncAt = time.Time{}
	r.ha.work.Unlock()
	eventually(t, "the backup daemon restarted", func() bool { return r.daemons(t) == "backup/eth1/7" })
}

func TestHASyncSettingsAndOwnership(t *testing.T) {
	r := newHARig(t, haTwoVIPs)
	ctx := context.Background()
	// A daemon someone else started with other settings is replaced: with
	// sync_daemon in the file, lvs-node owns both states.
	if err := r.sync.StartSync(ctx, ipvs.SyncDaemon{State: ipvs.SyncMaster, Interface: "eth0", SyncID: 1}); err != nil {
		t.Fatal(err)
	}
	r.ha.cfg = r.cfg
	r.ha.syncDirty = true
	r.ha.round(ctx)
	if got := r.daemons(t); got != "master/eth1/7 backup/eth1/7" {
		t.Fatalf("daemons %q", got)
	}
	// sync_daemon leaves the file: lvs-node stops the daemons it started
	// and never touches one it did not start.
	noSync := r.config(t, strings.Replace(haTwoVIPs, "sync_daemon: {interface: eth1, sync_id: 7}\n", "", 1))
	r.apply(t, noSync)
	if err := r.sync.StopSync(ctx, ipvs.SyncMaster); err != nil {
		t.Fatal(err)
	}
	r.ha.st.SyncStarted = []ipvs.SyncState{ipvs.SyncBackup}
	if err := r.sync.StartSync(ctx, ipvs.SyncDaemon{State: ipvs.SyncMaster, Interface: "eth0", SyncID: 3}); err != nil {
		t.Fatal(err)
	}
	r.ha.round(ctx)
	if got := r.daemons(t); got != "master/eth0/3" {
		t.Errorf("after sync_daemon left the file: %q", got)
	}
	// An interface the namespace lacks: reported, the table untouched,
	// retried once the settings are fixed.
	bad := r.config(t, strings.Replace(haTwoVIPs, "interface: eth1", "interface: eth9", 1))
	r.apply(t, bad)
	before := r.k.String()
	r.ha.syncDirty = true
	r.ha.round(ctx)
	if !errors.Is(r.ha.syncErr, syscall.ENODEV) {
		t.Errorf("sync error %v, want ENODEV", r.ha.syncErr)
	}
	if s := r.ha.Status(ctx); !strings.Contains(s, "NOT RUNNING") || !strings.Contains(s, "no such device") {
		t.Errorf("status does not report the failed daemon:\n%s", s)
	}
	if r.k.String() != before {
		t.Error("a sync daemon failure changed the IPVS table")
	}
}

// A kernel that does not answer the sync-daemon calls: each round gives up
// within its bound and the announcement still follows.
func TestHASyncKernelHeld(t *testing.T) {
	r := newHARig(t, haTwoVIPs)
	release := r.sync.Hold()
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r.ha.cfg = r.cfg
	r.ha.syncDirty = true
	start := time.Now()
	r.ha.round(ctx)
	if time.Since(start) > 2*time.Second || r.ha.syncErr == nil {
		t.Fatalf("held kernel: round took %v, error %v", time.Since(start), r.ha.syncErr)
	}
}

func TestHAAnnounceGates(t *testing.T) {
	r := newHARig(t, haTwoVIPs)
	stop := r.start(t)
	ctx := context.Background()
	want := func(s string) {
		t.Helper()
		eventually(t, "announcement "+s, func() bool { return r.ann.String() == s })
	}
	want("[192.0.2.10 192.0.2.20]")
	web := func(addr string) ServerRef {
		return ServerRef{Service: "web-tls", Addr: netip.MustParseAddr(addr), Port: 443}
	}
	// One of the two TLS servers down: min_up 1 still holds.
	if _, err := r.engine.SetHealth(ctx, map[ServerRef]Health{web("10.0.0.11"): {State: Down}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * haPoll)
	want("[192.0.2.10 192.0.2.20]")
	// Both down: the VIP goes, since web-tls shares it; the other stays.
	start := time.Now()
	if _, err := r.engine.SetHealth(ctx, map[ServerRef]Health{web("10.0.0.12"): {State: Down, Reason: "connect refused"}}); err != nil {
		t.Fatal(err)
	}
	want("[192.0.2.20]")
	t.Logf("withdrawn %v after the health verdict", time.Since(start))
	if s := r.ha.Status(ctx); !strings.Contains(s, "192.0.2.10: withheld: service web-tls has 0 of 2 real servers taking connections (min_up 1)") {
		t.Errorf("status:\n%s", s)
	}
	// Back up: announced again.
	if _, err := r.engine.SetHealth(ctx, map[ServerRef]Health{web("10.0.0.12"): {State: Up}}); err != nil {
		t.Fatal(err)
	}
	want("[192.0.2.10 192.0.2.20]")
	// The operator's drain of the director, saved across restarts.
	if err := r.ha.SetDrained(ctx, true); err != nil {
		t.Fatal(err)
	}
	if r.ann.String() != "[]" {
		t.Errorf("drain: announced %s at return", r.ann)
	}
	stop()
	r.newHA()
	stop = r.start(t)
	time.Sleep(3 * haPoll)
	want("[]")
	if err := r.ha.SetDrained(ctx, false); err != nil {
		t.Fatal(err)
	}
	want("[192.0.2.10 192.0.2.20]")
	// Backup and fault roles announce nothing.
	if err := r.ha.SetRole(ctx, Backup); err != nil {
		t.Fatal(err)
	}
	want("[]")
	if err := r.ha.SetRole(ctx, Standalone); err != nil {
		t.Fatal(err)
	}
	want("[192.0.2.10 192.0.2.20]")
	// Out of sync with the kernel: a failed reconciliation withdraws.
	r.k.FailTable(syscall.EIO)
	if _, err := r.engine.Resync(ctx); err == nil {
		t.Fatal("resync succeeded on a failing kernel")
	}
	want("[]")
	r.k.FailTable(nil)
	if _, err := r.engine.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	want("[192.0.2.10 192.0.2.20]")
	// Stopping withdraws.
	stop()
	if r.ann.String() != "[]" {
		t.Errorf("after stop: %s", r.ann)
	}
}

// BIRD not answering: the table keeps serving, the failure is reported
// and retried, and the announcement catches up once BIRD answers.
func TestHAAnnounceFailure(t *testing.T) {
	r := newHARig(t, haTwoVIPs)
	r.ann.setFail(errors.New("birdc configure: BIRD is not running or not listening on /run/bird/bird.ctl"))
	r.start(t)
	before := r.k.String()
	eventually(t, "a failed attempt", func() bool { _, ok := r.ha.Announced(); return !ok && r.ann.calls > 0 })
	if s := r.ha.Status(context.Background()); !strings.Contains(s, "BIRD: PROBLEM: birdc configure: BIRD is not running") || !strings.Contains(s, "last attempt failed") {
		t.Errorf("status:\n%s", s)
	}
	r.ann.setFail(nil)
	eventually(t, "the retry", func() bool { v, ok := r.ha.Announced(); return ok && len(v) == 2 })
	if r.k.String() != before {
		t.Error("the IPVS table changed")
	}
}

func TestAnnounceVIPsMinUp(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, strings.Replace(haTwoVIPs, "min_up: 1", "min_up: 2", 1))
	in := NewInputs()
	got := AnnounceVIPs(cfg, in, cfg.HA.Announce.MinUpOrDefault())
	if len(got) != 2 || !got[0].Announce || got[1].Announce || !strings.Contains(got[1].Reason, "dns has 1 of 1") {
		t.Errorf("min_up 2: %+v", got)
	}
	// A drained real server takes no new connections.
	in.Override[ServerRef{Service: "web", Addr: netip.MustParseAddr("10.0.0.11"), Port: 80}] = Override{Drain: true}
	if got := AnnounceVIPs(cfg, in, 2); got[0].Announce {
		t.Errorf("drained server counted: %+v", got)
	}
	if got := AnnounceVIPs(cfg, in, 0); !got[0].Announce || !got[1].Announce {
		t.Errorf("min_up 0: %+v", got)
	}
}
