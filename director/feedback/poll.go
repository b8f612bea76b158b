package feedback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// replyLimit bounds what is read from one agent.
const replyLimit = 4096

// Kinds of agent errors, the values of the kind label.
const (
	ErrKindConnect    = "connect"    // the connection failed (refused, unreachable)
	ErrKindTimeout    = "timeout"    // no complete reply within the poll timeout
	ErrKindIncomplete = "incomplete" // closed before the line end (a refused token too)
	ErrKindTooLong    = "too_long"   // no line end within 4 KiB
	ErrKindMalformed  = "malformed"  // words the grammar does not know
	ErrKindIO         = "io"         // any other read or write error
)

// PollError is a poll that gave no good reply.
type PollError struct {
	Kind string
	Err  error
}

func (e *PollError) Error() string { return e.Kind + ": " + e.Err.Error() }
func (e *PollError) Unwrap() error { return e.Err }

// Poll connects to the agent at addr, sends token (when not empty) as one
// line, and reads one reply, all within timeout. A reply with words the
// grammar does not know is an error of kind malformed: the director acts
// on no doubtful reply.
func Poll(ctx context.Context, addr netip.AddrPort, token string, timeout time.Duration) (agentcheck.Reply, error) {
	return poll(ctx, nil, addr, token, timeout)
}

// DialFunc opens a connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

func poll(ctx context.Context, dial DialFunc, addr netip.AddrPort, token string, timeout time.Duration) (agentcheck.Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", addr.String())
	if err != nil {
		return agentcheck.Reply{}, classify(ErrKindConnect, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Close the connection when ctx ends early (the daemon stops).
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if token != "" {
		if _, err := io.WriteString(conn, token+"\n"); err != nil {
			return agentcheck.Reply{}, classify(ErrKindIO, err)
		}
	}
	r, err := agentcheck.ReadReply(conn, replyLimit)
	var se *agentcheck.SyntaxError
	switch {
	case err == nil:
		return r, nil
	case errors.Is(err, agentcheck.ErrIncomplete):
		return r, &PollError{Kind: ErrKindIncomplete, Err: err}
	case errors.Is(err, agentcheck.ErrTooLong):
		return r, &PollError{Kind: ErrKindTooLong, Err: err}
	case errors.As(err, &se):
		return r, &PollError{Kind: ErrKindMalformed, Err: err}
	}
	return r, classify(ErrKindIO, err)
}

func classify(kind string, err error) *PollError {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		kind = ErrKindTimeout
	}
	return &PollError{Kind: kind, Err: err}
}

// ReadToken reads the token of a token file: its first line, without
// surrounding blanks. An empty token is an error.
func ReadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	tok := strings.TrimSpace(line)
	if tok == "" {
		return "", fmt.Errorf("token file %s: the first line is empty", path)
	}
	return tok, nil
}
