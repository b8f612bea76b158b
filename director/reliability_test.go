package director

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
)

// TestReloadRefusedByTheKernelRollsBack: a reload the kernel refuses
// half-way (the second of its changes) leaves the previous configuration
// in force, puts the kernel back to it at once, and later resyncs find
// nothing to do: they do not complete the refused reload.
func TestReloadRefusedByTheKernelRollsBack(t *testing.T) {
	r := newRig(t)
	old := r.config(t, twoServices)
	r.apply(t, old)
	before := r.k.String()
	next := r.config(t, twoServices+`  - name: new
    vip: 10.0.0.101
    port: 80
    real_servers:
      - {address: 10.0.0.21}
      - {address: 10.0.0.22}
`)
	r.k.FailOp(1, ipvstest.ErrInjected) // the service is created, its first server refused
	ops, err := r.engine.Reload(t.Context(), next)
	if err == nil || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "the previous configuration was restored") {
		t.Fatalf("reload: %v", err)
	}
	if len(ops) != 1 {
		t.Errorf("acknowledged ops: %s, want the service addition only", formatOps(ops))
	}
	if r.engine.Config() != old {
		t.Error("the refused configuration came into force")
	}
	if got := r.k.String(); got != before {
		t.Errorf("kernel after the refused reload:\n%s\nwant:\n%s", got, before)
	}
	for range 2 {
		if n, err := r.engine.Resync(t.Context()); err != nil || n != 0 {
			t.Errorf("resync after the refused reload: %d changes, %v", n, err)
		}
	}
	if got := r.k.String(); got != before {
		t.Errorf("kernel after resyncs:\n%s\nwant:\n%s", got, before)
	}
	if c := r.engine.Counters(); c.ReloadErrors != 1 || c.Repairs != 0 {
		t.Errorf("counters = %+v", c)
	}
}

// TestResyncRepairsAroundAMissingModule: one service whose scheduler
// module the kernel lacks does not keep a resync from repairing the
// others; the resync reports that service, by key, with the reason.
func TestResyncRepairsAroundAMissingModule(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, strings.Replace(twoServices, "scheduler: rr", "scheduler: sed", 1))
	r.apply(t, cfg)
	// The sed module goes away (a kernel package upgrade, a blacklist)
	// and both services drift: sed's is deleted, web loses a server.
	r.k.SetModule(ipvs.SchedulerModule("sed"), false)
	r.k.Run(ipvs.Op{Kind: ipvs.DelService, Service: svc("10.0.0.100", 8080, "sed")}, opDelDest("10.0.0.100", 80, "10.0.0.11"))
	n, err := r.engine.Resync(t.Context())
	var pe *PartialError
	if !errors.As(err, &pe) || len(pe.Skipped) != 1 || !strings.Contains(err.Error(), "TCP 10.0.0.100:8080") ||
		!strings.Contains(err.Error(), `scheduler "sed" is not available in this kernel`) {
		t.Fatalf("resync: %d, %v", n, err)
	}
	if n != 1 || !strings.Contains(r.k.String(), "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 100\n") {
		t.Errorf("web not repaired (%d changes):\n%s", n, r.k)
	}
	if c := r.engine.Counters(); c.Repairs != 1 {
		t.Errorf("repairs counted %d, want the one the kernel acknowledged", c.Repairs)
	}
	// The module is back: the next resync restores the service.
	r.k.SetModule(ipvs.SchedulerModule("sed"), true)
	if n, err := r.engine.Resync(t.Context()); err != nil || n != 2 {
		t.Errorf("resync with the module back: %d, %v", n, err)
	}
}

// unsentKernel fails an Apply with an *ipvs.OpError that names a late op
// but says nothing was sent, as the client does for an op it cannot
// encode.
type unsentKernel struct {
	*ipvstest.Kernel
	fail bool
}

func (k *unsentKernel) Apply(ctx context.Context, ops []ipvs.Op) error {
	if k.fail && len(ops) > 2 {
		return &ipvs.OpError{Index: 2, Op: ops[2], Err: errors.New("cannot encode"), Sent: 0}
	}
	return k.Kernel.Apply(ctx, ops)
}

// TestOnlyAcknowledgedOpsCount: a batch refused before anything was sent
// counts no repair and no applied op, whatever index the error names.
func TestOnlyAcknowledgedOpsCount(t *testing.T) {
	r := newRig(t)
	k := &unsentKernel{Kernel: r.k}
	r.engine = NewEngine(r.dir, Deps{Kernel: k, Marker: r.m, Sysctls: r.s, Host: r.a})
	r.apply(t, r.config(t, twoServices))
	applied := r.engine.Counters().OpsApplied
	r.k.Run(ipvs.Op{Kind: ipvs.DelService, Service: svc("10.0.0.100", 8080, "rr")}, opDelDest("10.0.0.100", 80, "10.0.0.11"))
	k.fail = true
	n, err := r.engine.Resync(t.Context())
	if err == nil || n != 0 {
		t.Fatalf("resync: %d, %v", n, err)
	}
	if c := r.engine.Counters(); c.Repairs != 0 || c.OpsApplied != applied {
		t.Errorf("counted ops that were never sent: %+v", c)
	}
}

// TestSlowKernelCallBoundedReadersAnswer: while a kernel call hangs,
// metrics, readiness and the engine's readers answer at once; the call
// ends at its deadline with an error, and the engine's lock is free again.
func TestSlowKernelCallBoundedReadersAnswer(t *testing.T) {
	r := newRig(t)
	r.apply(t, r.config(t, twoServices))
	release := r.k.Hold()
	defer release()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { _, err := r.engine.Resync(ctx); errc <- err }()
	time.Sleep(50 * time.Millisecond)

	srv := httptest.NewServer(MetricsHandler(NewMetricsRegistry(r.engine), r.engine, nil))
	defer srv.Close()
	client := &http.Client{Timeout: 200 * time.Millisecond}
	for _, path := range []string{"/metrics", "/readyz", "/healthz"} {
		t0 := time.Now()
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s during a stuck kernel call: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path == "/metrics" && !strings.Contains(string(body), "lvs_node_ipvs_backend_connections_total") {
			t.Errorf("metrics during a stuck call lack the last snapshot:\n%s", body)
		}
		t.Logf("GET %s: %s in %v during a stuck kernel call", path, resp.Status, time.Since(t0).Round(time.Microsecond))
	}
	_ = r.engine.Counters()
	_ = r.engine.Ready()
	if tb, _ := r.engine.Snapshot(); tb == nil {
		t.Error("no snapshot during a stuck kernel call")
	}

	err := <-errc
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stuck resync: %v", err)
	}
	if took > 2*time.Second {
		t.Errorf("a 500ms deadline took %v", took)
	}
	t.Logf("stuck resync ended after %v: %v", took.Round(time.Millisecond), err)
	if r.engine.Ready() == nil {
		t.Error("ready after a failed reconciliation")
	}
	release()
	// Every lock was released: the next change goes through.
	if _, err := r.engine.Apply(t.Context(), r.config(t, webWeight(5))); err != nil {
		t.Fatalf("apply after the stuck call: %v", err)
	}
}
