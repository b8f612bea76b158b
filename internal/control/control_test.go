package control

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func serve(t *testing.T, h Handler, allowed ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "ctl.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Serve(ctx, ln, slog.New(slog.DiscardHandler), h, allowed...); close(done) }()
	t.Cleanup(func() { cancel(); ln.Close(); <-done })
	return path
}

func TestCallOkErrorAndUnknown(t *testing.T) {
	var got []string
	path := serve(t, func(_ context.Context, cmd string) (string, error) {
		got = append(got, cmd)
		if cmd == "reload" {
			return "", errors.New("f.yaml:3:1: bad\nf.yaml:4:1: worse")
		}
		return "{\"vips\":1}\n", nil
	}, "status", "reload")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket mode %v, %v", fi.Mode(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := Call(ctx, path, "status")
	if err != nil || body != "{\"vips\":1}\n" {
		t.Fatalf("status = %q, %v", body, err)
	}
	_, err = Call(ctx, path, "reload")
	var r *Refusal
	if !errors.As(err, &r) || r.Problems != "f.yaml:3:1: bad\nf.yaml:4:1: worse" {
		t.Fatalf("reload = %v", err)
	}
	_, err = Call(ctx, path, "set weight 0")
	if !errors.As(err, &r) || !strings.Contains(r.Problems, `unknown command "set weight 0"`) {
		t.Fatalf("unknown command = %v", err)
	}
	if strings.Join(got, ",") != "status,reload" {
		t.Fatalf("the handler saw %v; an unknown command must not reach it", got)
	}
}

func TestListenRefusesLiveSocketAndPlainFile(t *testing.T) {
	path := serve(t, func(context.Context, string) (string, error) { return "", nil }, "status")
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Listen on a live socket = %v", err)
	}
	plain := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(plain); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen on a plain file = %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody answers: a daemon that died
	ln2, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln2.Close()
}

func TestCallNoDaemon(t *testing.T) {
	_, err := Call(context.Background(), filepath.Join(t.TempDir(), "none.sock"), "status")
	if err == nil || !strings.Contains(err.Error(), "reach the daemon") {
		t.Fatalf("Call without a daemon = %v", err)
	}
}

// TestCommandsWithArguments: an allowed "name ..." takes arguments, the
// bare name and other words do not.
func TestCommandsWithArguments(t *testing.T) {
	var got []string
	path := serve(t, func(_ context.Context, cmd string) (string, error) {
		got = append(got, cmd)
		return "done\n", nil
	}, "status", "drain ...")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if body, err := Call(ctx, path, "drain 10.0.0.11:80 web"); err != nil || body != "done\n" {
		t.Fatalf("drain with arguments = %q, %v", body, err)
	}
	for _, bad := range []string{"drain", "drainx 1", "status 1", "drai 1"} {
		var r *Refusal
		if _, err := Call(ctx, path, bad); !errors.As(err, &r) || !strings.Contains(r.Problems, "unknown command") {
			t.Errorf("%q = %v, want refused", bad, err)
		}
	}
	if strings.Join(got, ",") != "drain 10.0.0.11:80 web" {
		t.Fatalf("the handler saw %v", got)
	}
}

// TestListenModeWithoutUmaskWindow: the socket is never reachable with a
// mode other than 0600, whatever the umask: it is made in a private
// directory and renamed into place.
func TestListenModeWithoutUmaskWindow(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "ctl.sock")
	// Watch the path while sockets are made there again and again: no
	// look may find it with another mode.
	stop := make(chan struct{})
	seen := make(chan os.FileMode, 1)
	go func() {
		defer close(seen)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if fi, err := os.Lstat(path); err == nil && fi.Mode().Perm() != 0o600 {
				seen <- fi.Mode()
				return
			}
		}
	}()
	for range 300 {
		ln, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
	}
	close(stop)
	if m, ok := <-seen; ok {
		t.Fatalf("the socket was reachable with mode %v", m)
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v", fi.Mode(), err)
	}
	// Where it was made: a private directory, gone now.
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("directory holds %v (%v), want the socket only", ents, err)
	}
	if c, err := net.Dial("unix", path); err != nil {
		t.Fatalf("dial the renamed socket: %v", err)
	} else {
		c.Close()
	}
}

// TestCloseRemovesOnlyItsOwnSocket: a socket file replaced after Listen
// (another daemon's) is not removed by Close.
func TestCloseRemovesOnlyItsOwnSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left the socket: %v", err)
	}
	ln, err = Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("Close removed a socket that is not its own: %v", err)
	}
}
