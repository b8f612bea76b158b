package sdnotify_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/sdnotify"
	"github.com/lvs-node/lvs-node/internal/sdnotify/sdnotifytest"
)

func TestMessages(t *testing.T) {
	m := sdnotifytest.Listen(t)
	next := func() string {
		t.Helper()
		msg, ok := m.Next(time.Second)
		if !ok {
			t.Fatal("no notification")
		}
		return msg
	}
	sdnotify.Ready(nil, "applied 3 services\nand more")
	if got, want := next(), "READY=1\nSTATUS=applied 3 services and more"; got != want {
		t.Errorf("Ready sent %q, want %q", got, want)
	}
	var before unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &before); err != nil {
		t.Fatal(err)
	}
	sdnotify.Reloading(nil)
	got := next()
	first, usec, ok := strings.Cut(got, "\nMONOTONIC_USEC=")
	if !ok || first != "RELOADING=1" {
		t.Fatalf("Reloading sent %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || n < before.Nano()/1000 || n > before.Nano()/1000+10e6 {
		t.Errorf("MONOTONIC_USEC=%s is not the monotonic clock now (%d us)", usec, before.Nano()/1000)
	}
	sdnotify.Stopping(nil)
	if got := next(); got != "STOPPING=1" {
		t.Errorf("Stopping sent %q", got)
	}
}

// Without NOTIFY_SOCKET nothing is sent and nothing is logged.
func TestNoServiceManager(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	var logs bytes.Buffer
	sdnotify.Ready(slog.New(slog.NewTextHandler(&logs, nil)), "x")
	if logs.Len() != 0 {
		t.Errorf("logged without a service manager: %s", logs.String())
	}
}

// A service manager that went away is logged as a warning; the caller
// goes on.
func TestManagerGone(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	var logs bytes.Buffer
	sdnotify.Ready(slog.New(slog.NewTextHandler(&logs, nil)), "")
	if !strings.Contains(logs.String(), "cannot notify the service manager") || !strings.Contains(logs.String(), "READY=1") {
		t.Errorf("log = %q", logs.String())
	}
}
