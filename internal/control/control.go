package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxReply bounds what a client reads back.
const maxReply = 16 << 20

// Handler answers one command: the body of an "ok" answer, or an error
// whose text is sent as the "error" answer. It is called on its own
// goroutine for each connection.
type Handler func(ctx context.Context, cmd string) (string, error)

// Refusal is an "error" answer from the daemon: its problems, one per line.
type Refusal struct{ Problems string }

func (r *Refusal) Error() string { return r.Problems }

// Listen opens the control socket at path with mode 0600, creating its
// directory. The socket is made in a private directory (mode 0700) of the
// same directory, given its mode there and renamed into place, so that
// it is never reachable with another mode, whatever the umask. A socket
// at path that no process answers on (its daemon died) is replaced; one a
// process answers on is not, and neither is anything that is not a socket
// or a socket whose state cannot be told.
//
// Closing the listener removes the socket file, unless path has been
// replaced by another file since.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if err := checkStale(path); err != nil {
		return nil, err
	}
	priv, err := os.MkdirTemp(dir, ".ctl")
	if err != nil {
		return nil, fmt.Errorf("control socket: private directory: %w", err)
	}
	defer os.RemoveAll(priv)
	tmp := filepath.Join(priv, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false) // the file moves: Close removes it by path
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket mode: %w", err)
	}
	fi, err := os.Lstat(tmp)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: move into place: %w", err)
	}
	return &listener{UnixListener: ln, path: path, fi: fi}, nil
}

// checkStale returns nil when nothing is at path or a socket no process
// answers on (which Listen then replaces).
func checkStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket %s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("control socket %s is in use: is another daemon running?", path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil // nobody listens: a daemon that died left it
	case errors.Is(err, fs.ErrNotExist):
		return nil // gone meanwhile
	}
	return fmt.Errorf("control socket %s exists and it cannot be told whether a daemon answers on it (%w): remove it if none does", path, err)
}

// listener removes its socket file on Close while the file is still the
// one it created.
type listener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
	once sync.Once
}

func (l *listener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.fi) {
			os.Remove(l.path)
		}
	})
	return err
}

// Serve answers connections on ln with h until ln is closed. Commands
// not in allowed are refused without reaching h; an allowed entry
// "name ..." accepts name followed by arguments.
func Serve(ctx context.Context, ln net.Listener, log *slog.Logger, h Handler, allowed ...string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				log.Error("control socket", "error", err)
			}
			return
		}
		go handle(ctx, c, h, allowed)
	}
}

func handle(ctx context.Context, c net.Conn, h Handler, allowed []string) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 256)).ReadString('\n')
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	cmd := strings.TrimSpace(line)
	known := false
	for _, a := range allowed {
		if name, ok := strings.CutSuffix(a, " ..."); ok {
			known = known || strings.HasPrefix(cmd, name+" ")
		} else {
			known = known || cmd == a
		}
	}
	if !known {
		fmt.Fprintf(c, "error\nunknown command %q (want %s)\n", cmd, strings.Join(allowed, " or "))
		return
	}
	body, err := h(ctx, cmd)
	if err != nil {
		fmt.Fprintf(c, "error\n%s\n", strings.TrimRight(err.Error(), "\n"))
		return
	}
	fmt.Fprintf(c, "ok\n%s", body)
}

// Call sends cmd to the daemon on the socket at path and returns the body
// of its "ok" answer, or a *Refusal with its problems. The context bounds
// the whole exchange.
func Call(ctx context.Context, path, cmd string) (string, error) {
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "unix", path)
	if err != nil {
		return "", fmt.Errorf("reach the daemon on %s: %w", path, err)
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", fmt.Errorf("send %s: %w", cmd, err)
	}
	out, err := io.ReadAll(io.LimitReader(c, maxReply))
	if err != nil {
		return "", fmt.Errorf("read reply: %w", err)
	}
	first, rest, _ := strings.Cut(string(out), "\n")
	switch first {
	case "ok":
		return rest, nil
	case "error":
		return "", &Refusal{Problems: strings.TrimRight(rest, "\n")}
	}
	return "", fmt.Errorf("unexpected reply on %s: %q", path, string(out))
}
