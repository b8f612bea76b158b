package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
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
// directory. A socket left by a daemon that died is replaced; one a live
// daemon answers on is not, and neither is a file that is not a socket.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use: is another daemon running?", path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale control socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket mode: %w", err)
	}
	return ln, nil
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
