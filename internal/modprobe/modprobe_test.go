package modprobe

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeModprobe puts a modprobe script first on PATH.
func fakeModprobe(t *testing.T, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "modprobe"), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// TestStuckModprobeTimesOut: a modprobe that sleeps (and a child of it
// that keeps its output open) is given up on after the timeout.
func TestStuckModprobeTimesOut(t *testing.T) {
	fakeModprobe(t, "sleep 60 & sleep 60\n")
	start := time.Now()
	err := Load(context.Background(), "ip_vs_sed", 300*time.Millisecond)
	took := time.Since(start)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "modprobe ip_vs_sed") {
		t.Fatalf("stuck modprobe: %v", err)
	}
	if took > 3*time.Second {
		t.Errorf("a 300ms bound took %v", took)
	}
	t.Logf("stuck modprobe given up after %v", took.Round(time.Millisecond))
}

func TestModprobeFailureSaysWhy(t *testing.T) {
	fakeModprobe(t, "echo \"modprobe: FATAL: Module $1 not found in directory /lib/modules/6.1.0\" >&2; exit 1\n")
	err := Load(context.Background(), "ip_vs_twos", time.Second)
	if err == nil || errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "modprobe ip_vs_twos: exit status 1: modprobe: FATAL: Module ip_vs_twos not found") {
		t.Fatalf("failing modprobe: %v", err)
	}
	fakeModprobe(t, "exit 0\n")
	if err := Load(context.Background(), "ip_vs_rr", time.Second); err != nil {
		t.Fatal(err)
	}
}
