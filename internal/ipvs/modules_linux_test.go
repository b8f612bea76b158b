package ipvs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/modprobe"
)

// TestStuckModprobeHoldsNoLockAndTimesOut: loading a scheduler module with
// a modprobe that hangs holds no lock of the client (reads go on) and
// fails the batch, before anything is sent, after ModprobeTimeout.
func TestStuckModprobeHoldsNoLockAndTimesOut(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "modprobe"), []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	c := &Client{modules: map[string]bool{}, ModprobeTimeout: 500 * time.Millisecond}
	ops := []Op{{Kind: AddService, Service: Service{ServiceKey: ServiceKey{Family: 2, Protocol: TCP, Port: 80}, Scheduler: "lvsnodetest"}}}
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- c.loadModules(context.Background(), ops) }()
	time.Sleep(100 * time.Millisecond)
	if !c.mu.TryLock() {
		t.Fatal("the client lock is held while modprobe runs")
	}
	c.mu.Unlock()
	err := <-errc
	var oe *OpError
	if !errors.As(err, &oe) || oe.Sent != 0 || !errors.Is(err, ErrModule) || !errors.Is(err, modprobe.ErrTimeout) {
		t.Fatalf("stuck modprobe: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a 500ms bound took %v", took)
	}
}
