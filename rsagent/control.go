package rsagent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The control protocol, on a unix socket of mode 0600: the client sends
// one line, "status" or "reload"; the daemon answers "ok" followed by the
// status as JSON (status) or the changes made, one per line (reload), or
// "error" followed by the problems, one per line, and closes. The socket
// accepts no state: reload makes the daemon re-read its own file.
const (
	cmdStatus = "status"
	cmdReload = "reload"
)

// ErrReloadRefused marks a reload whose file did not validate or apply;
// the previous configuration stays in effect.
var ErrReloadRefused = errors.New("reload refused, the previous configuration stays in effect")

// ctlReq is a control request handed to the daemon's loop.
type ctlReq struct {
	cmd   string
	reply chan ctlReply
}

type ctlReply struct {
	body string
	err  error
}

// listenControl opens the control socket at path, mode 0600. A socket left
// by a daemon that died is replaced; a live one is not.
func listenControl(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use: is another realserver daemon running?", path)
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

// serveControl accepts connections until ln is closed and hands each
// request to the daemon loop through reqs.
func (a *Agent) serveControl(ln net.Listener, reqs chan<- ctlReq, done <-chan struct{}) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				a.log.Error("control socket", "err", err)
			}
			return
		}
		go handleControl(c, reqs, done)
	}
}

func handleControl(c net.Conn, reqs chan<- ctlReq, done <-chan struct{}) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 256)).ReadString('\n')
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	cmd := strings.TrimSpace(line)
	if cmd != cmdStatus && cmd != cmdReload {
		fmt.Fprintf(c, "error\nunknown command %q (want status or reload)\n", cmd)
		return
	}
	req := ctlReq{cmd: cmd, reply: make(chan ctlReply, 1)}
	select {
	case reqs <- req:
	case <-done:
		fmt.Fprintln(c, "error\nthe daemon is stopping")
		return
	}
	var r ctlReply
	select {
	case r = <-req.reply:
	case <-done:
		fmt.Fprintln(c, "error\nthe daemon is stopping")
		return
	}
	if r.err != nil {
		fmt.Fprintf(c, "error\n%s\n", strings.TrimRight(r.err.Error(), "\n"))
		return
	}
	fmt.Fprintf(c, "ok\n%s", r.body)
}

// refusal is the daemon's "error" answer.
type refusal string

func (r refusal) Error() string { return string(r) }

// ask sends cmd to the daemon on socket and returns the body of an "ok"
// answer.
func ask(ctx context.Context, socket, cmd string) (string, error) {
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", fmt.Errorf("reach the realserver daemon on %s: %w", socket, err)
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", fmt.Errorf("send %s: %w", cmd, err)
	}
	out, err := io.ReadAll(io.LimitReader(c, 16<<20))
	if err != nil {
		return "", fmt.Errorf("read reply: %w", err)
	}
	first, rest, _ := strings.Cut(string(out), "\n")
	switch first {
	case "ok":
		return rest, nil
	case "error":
		return "", refusal(strings.TrimRight(rest, "\n"))
	}
	return "", fmt.Errorf("unexpected reply from the realserver daemon: %q", string(out))
}

// RequestStatus asks the daemon listening on socket for its status.
func RequestStatus(ctx context.Context, socket string) (*Status, error) {
	body, err := ask(ctx, socket, cmdStatus)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, fmt.Errorf("decode status: %w", err)
	}
	return &st, nil
}

// RequestReload asks the daemon listening on socket to re-read its own
// configuration file and returns the changes it made. A refused reload
// returns an error wrapping ErrReloadRefused with the problems.
func RequestReload(ctx context.Context, socket string) ([]string, error) {
	body, err := ask(ctx, socket, cmdReload)
	var r refusal
	if errors.As(err, &r) {
		return nil, fmt.Errorf("%w:\n%s", ErrReloadRefused, string(r))
	}
	if err != nil {
		return nil, err
	}
	var changes []string
	for l := range strings.SplitSeq(strings.TrimRight(body, "\n"), "\n") {
		if l != "" {
			changes = append(changes, l)
		}
	}
	return changes, nil
}
