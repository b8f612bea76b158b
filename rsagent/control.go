package rsagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lvs-node/lvs-node/internal/control"
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

// handler hands each control request to the daemon loop through reqs. A
// status request the loop does not take within statusWait (it is in a
// slow kernel call) is answered from board.
func handler(reqs chan<- ctlReq, done <-chan struct{}, board *statusBoard) control.Handler {
	return func(_ context.Context, cmd string) (string, error) {
		req := ctlReq{cmd: cmd, reply: make(chan ctlReply, 1)}
		var wait <-chan time.Time
		if cmd == cmdStatus {
			t := time.NewTimer(statusWait)
			defer t.Stop()
			wait = t.C
		}
		select {
		case reqs <- req:
		case <-wait:
			r := board.busyReply()
			return r.body, r.err
		case <-done:
			return "", errors.New("the daemon is stopping")
		}
		select {
		case r := <-req.reply:
			return r.body, r.err
		case <-done:
			return "", errors.New("the daemon is stopping")
		}
	}
}

// RequestStatus asks the daemon listening on socket for its status.
func RequestStatus(ctx context.Context, socket string) (*Status, error) {
	body, err := control.Call(ctx, socket, cmdStatus)
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
	body, err := control.Call(ctx, socket, cmdReload)
	var r *control.Refusal
	if errors.As(err, &r) {
		return nil, fmt.Errorf("%w:\n%s", ErrReloadRefused, r.Problems)
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
