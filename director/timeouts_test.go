package director

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// fakeTimeouts holds the kernel's timeouts; a zero field of SetTimeouts
// leaves that timeout as it is, as in the kernel.
type fakeTimeouts struct {
	t    ipvs.Timeouts
	sets int
	fail error
}

func (f *fakeTimeouts) Timeouts(context.Context) (ipvs.Timeouts, error) { return f.t, nil }

func (f *fakeTimeouts) SetTimeouts(_ context.Context, t ipvs.Timeouts) error {
	if f.fail != nil {
		return f.fail
	}
	f.sets++
	for _, p := range []struct {
		dst *time.Duration
		v   time.Duration
	}{{&f.t.TCP, t.TCP}, {&f.t.TCPFin, t.TCPFin}, {&f.t.UDP, t.UDP}} {
		if p.v != 0 {
			*p.dst = p.v
		}
	}
	return nil
}

func kernelDefaults() ipvs.Timeouts {
	return ipvs.Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}
}

// TestTimeouts: director.timeouts is applied, repaired by a resync,
// recorded before the first change and restored by Down, and by a reload
// that drops it.
func TestTimeouts(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	ft := &fakeTimeouts{t: kernelDefaults()}
	r.engine = NewEngine(r.dir, Deps{Kernel: r.k, Marker: r.m, Sysctls: r.s, Host: r.a, Timeouts: ft})
	body := "  timeouts: {tcp: 1h, udp: 30s}\nvirtual_services:\n  - {name: a, vip: 10.0.0.1, port: 80}\n"
	cfg := r.config(t, body)
	if _, err := r.engine.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if want := (ipvs.Timeouts{TCP: time.Hour, TCPFin: 120 * time.Second, UDP: 30 * time.Second}); ft.t != want {
		t.Fatalf("timeouts %+v, want %+v", ft.t, want)
	}
	b, err := os.ReadFile(filepath.Join(r.dir, timeoutsFile))
	if err != nil || !strings.Contains(string(b), `"tcp": 900`) || !strings.Contains(string(b), `"udp": 300`) {
		t.Fatalf("originals not recorded: %s %v", b, err)
	}
	// Nothing to change: nothing set.
	if _, err := r.engine.Apply(ctx, cfg); err != nil || ft.sets != 1 {
		t.Fatalf("second apply set the timeouts again (%d sets, %v)", ft.sets, err)
	}
	// Someone runs ipvsadm --set: the resync puts the configured ones back
	// and keeps the first originals.
	ft.t.TCP = 5 * time.Second
	if _, err := r.engine.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	if ft.t.TCP != time.Hour {
		t.Errorf("resync left tcp at %s", ft.t.TCP)
	}
	// A restarted director restores them on down.
	r.engine = NewEngine(r.dir, Deps{Kernel: r.k, Marker: r.m, Sysctls: r.s, Host: r.a, Timeouts: ft})
	if _, err := r.engine.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if ft.t != kernelDefaults() {
		t.Errorf("down left %+v", ft.t)
	}
	if _, err := os.Stat(filepath.Join(r.dir, timeoutsFile)); !os.IsNotExist(err) {
		t.Errorf("record kept after restore: %v", err)
	}

	// A reload without timeouts restores them too.
	if _, err := r.engine.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := r.engine.Reload(ctx, r.config(t, "virtual_services:\n  - {name: a, vip: 10.0.0.1, port: 80}\n")); err != nil {
		t.Fatal(err)
	}
	if ft.t != kernelDefaults() {
		t.Errorf("reload without timeouts left %+v", ft.t)
	}

	// A refused change fails the apply and keeps the record.
	ft.fail = errors.New("refused")
	if _, err := r.engine.Reload(ctx, cfg); err == nil || !strings.Contains(err.Error(), "set IPVS timeouts: refused") {
		t.Errorf("refused timeouts: %v", err)
	}
}

func TestTimeoutsRejects(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"director: {timeouts: {tcp: 0s}}\n", "d.yaml:1:23: director.timeouts.tcp: must be at least 1s"},
		{"director: {timeouts: {udp: 1500ms}}\n", "director.timeouts.udp: must be whole seconds"},
		{"director: {timeouts: {tcp_fin: 800h}}\n", "director.timeouts.tcp_fin: must be at most 31 days"},
		{"director: {timeouts: {tcp: 1m, icmp: 1s}}\n", "unknown key \"icmp\""},
	} {
		if _, _, err := ParseConfig("d.yaml", []byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}
