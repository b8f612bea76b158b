package director

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
	"github.com/lvs-node/lvs-node/internal/sdnotify/sdnotifytest"
)

// The service manager hears READY=1 only once the configuration is applied
// and the kernel in sync: not while the first apply fails (the unit stays
// "activating"), but after the retry or resync that succeeds. Reloads are
// framed by RELOADING=1 and READY=1, refused ones too, and stopping says
// STOPPING=1.
func TestDaemonNotifiesServiceManager(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(k *ipvstest.Kernel)
	}{
		{"table unreadable at start", func(k *ipvstest.Kernel) { k.FailTable(fmt.Errorf("read IPVS table: %w", syscall.ENOENT)) }},
		{"first change refused", func(k *ipvstest.Kernel) { k.FailOp(0, ipvstest.ErrInjected) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mgr := sdnotifytest.Listen(t)
			r := newRig(t)
			k := r.k
			tc.inject(k)
			sockDir, err := os.MkdirTemp("", "lvsd")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(sockDir) })
			sock := filepath.Join(sockDir, "d.sock")
			path := filepath.Join(r.dir, "director.yaml")
			write := func(body string) {
				head := "director:\n  state_dir: " + r.dir + "\n  resync_interval: 1s\nlisten:\n  metrics: \"\"\n  control: " + sock + "\n"
				if err := os.WriteFile(path, []byte(head+body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(twoServices)
			cfg, _, err := LoadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			logs := &syncBuf{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			e := NewEngine(r.dir, Deps{Kernel: k, Marker: r.m, Sysctls: r.s, Host: r.a, Log: log})
			d := &Daemon{Path: path, Engine: e, Log: log}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx, cfg) }()
			defer func() {
				cancel()
				<-done
			}()

			if msg, ok := mgr.Next(500 * time.Millisecond); ok {
				t.Fatalf("notified %q while the first apply had failed:\n%s", msg, logs)
			}
			if !strings.Contains(logs.String(), "apply failed") {
				t.Fatalf("the injected failure did not happen:\n%s", logs)
			}
			k.FailTable(nil)
			msg, ok := mgr.Next(3 * time.Second)
			if !ok || msg != "READY=1\nSTATUS=2 virtual services in sync" {
				t.Fatalf("after the retry: notified %q (%v), want READY=1:\n%s", msg, ok, logs)
			}
			if !strings.Contains(k.String(), "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 100") {
				t.Fatalf("READY=1 before the kernel was in sync:\n%s", k)
			}

			// A refused reload: the old configuration stays, and the
			// reload still ends with READY=1.
			write("virtual_services: [{name: web, vip: 10.0.0.100, port: 80, scheduler: nope}]\n")
			if err := RequestReload(t.Context(), sock); err == nil {
				t.Fatal("a bad file was accepted")
			}
			wantReload(t, mgr, "reload refused; the previous configuration stays in effect")
			write(strings.Replace(twoServices, "weight: 100}\n  - name: api", "weight: 7}\n  - name: api", 1))
			if err := RequestReload(t.Context(), sock); err != nil {
				t.Fatalf("reload: %v\n%s", err, logs)
			}
			wantReload(t, mgr, "reloaded")

			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			done <- nil
			if msg, ok := mgr.Next(time.Second); !ok || msg != "STOPPING=1" {
				t.Fatalf("on stop: notified %q (%v), want STOPPING=1", msg, ok)
			}
		})
	}
}

// wantReload reads RELOADING=1 (with MONOTONIC_USEC) then READY=1 with
// status.
func wantReload(t *testing.T, mgr *sdnotifytest.Manager, status string) {
	t.Helper()
	msg, ok := mgr.Next(time.Second)
	if !ok || !strings.HasPrefix(msg, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("notified %q (%v), want RELOADING=1", msg, ok)
	}
	msg, ok = mgr.Next(time.Second)
	if want := "READY=1\nSTATUS=" + status; !ok || msg != want {
		t.Fatalf("notified %q (%v), want %q", msg, ok, want)
	}
}
