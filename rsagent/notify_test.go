package rsagent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/sdnotify/sdnotifytest"
)

// A real server that cannot be prepared never tells the service manager
// it is ready: the start fails.
func TestNotifyNotReadyWhenRefused(t *testing.T) {
	mgr := sdnotifytest.Listen(t)
	f := newFake(t)
	f.modules = map[string]bool{} // no ipip: the tun VIP cannot be set up
	c, doc := loadYAML(t, t.TempDir(), ctlConfig)
	a := newAgent(t, f, c, doc)
	if err := a.Run(t.Context(), RunOptions{}); err == nil {
		t.Fatal("Run succeeded without ipip")
	}
	if msg, ok := mgr.Next(200 * time.Millisecond); ok {
		t.Fatalf("notified %q although the start failed", msg)
	}
}

// READY=1 follows the first apply; reloads are framed by RELOADING=1 and
// READY=1 whatever their result; stopping says STOPPING=1.
func TestNotifyReadyReloadStop(t *testing.T) {
	mgr := sdnotifytest.Listen(t)
	f := newFake(t)
	tmp := t.TempDir()
	c, doc := loadYAML(t, tmp, ctlConfig)
	cfgPath := doc.File
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(strings.Replace(body, "STATE", tmp, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a := newAgent(t, f, c, doc)
	var logs syncBuf
	a.log = slog.New(slog.NewTextHandler(&logs, nil))
	sock := filepath.Join(tmp, "rs.sock")
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx, RunOptions{ConfigPath: cfgPath, Control: sock}) }()
	defer func() { cancel(); <-errc }()

	next := func(want string) {
		t.Helper()
		msg, ok := mgr.Next(2 * time.Second)
		if !ok || !strings.HasPrefix(msg, want) {
			t.Fatalf("notified %q (%v), want %q:\n%s", msg, ok, want, logs.String())
		}
	}
	next("READY=1\nSTATUS=2 VIPs applied")
	if s, _ := f.Snapshot(); !s.HasAddr(Addr{Dev: "lo", Prefix: mustPrefix("10.0.0.100/32")}) {
		t.Fatal("READY=1 before the VIP was bound")
	}
	write("realserver:\n  vips: [{address: 10.0.0.100, mode: bogus}]\n")
	if _, err := RequestReload(t.Context(), sock); err == nil {
		t.Fatal("a bad file was accepted")
	}
	next("RELOADING=1\nMONOTONIC_USEC=")
	next("READY=1\nSTATUS=reload refused; the previous configuration stays in effect")
	write(strings.Replace(ctlConfig, "    - {address: 10.0.0.101, mode: tun}\n", "", 1))
	if _, err := RequestReload(t.Context(), sock); err != nil {
		t.Fatal(err)
	}
	next("RELOADING=1\nMONOTONIC_USEC=")
	next("READY=1\nSTATUS=reloaded; 1 VIPs applied")
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	errc <- nil
	next("STOPPING=1")
}
