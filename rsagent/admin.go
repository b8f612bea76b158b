package rsagent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
	"github.com/lvs-node/lvs-node/internal/control"
	"github.com/lvs-node/lvs-node/internal/state"
)

// Control-socket commands that set the admin state the agent reports:
// "drain", "ready" and "maint". They exist only on the local control
// socket (mode 0600): no state can be changed over the network.
const (
	cmdDrain = "drain"
	cmdReady = "ready"
	cmdMaint = "maint"
)

// AdminCommands are the control-socket commands of the admin state.
func AdminCommands() []string { return []string{cmdDrain, cmdReady, cmdMaint} }

// adminRecord is the admin state file.
type adminRecord struct {
	Admin   string    `json:"admin"`
	Changed time.Time `json:"changed"`
}

// AdminStore keeps the admin state in state_dir, so that it survives a
// restart of the agent. Set writes the file (atomically) before the new
// state is reported.
type AdminStore struct {
	path string
	mu   sync.Mutex
	cur  agentcheck.Admin
}

// OpenAdminStore reads the admin state of stateDir; a missing file means
// ready.
func OpenAdminStore(stateDir string) (*AdminStore, error) {
	s := &AdminStore{path: filepath.Join(stateDir, AdminStateFile), cur: agentcheck.AdminReady}
	var rec adminRecord
	found, err := state.Load(s.path, &rec)
	if err != nil {
		return nil, fmt.Errorf("admin state: %w", err)
	}
	if found {
		a, err := agentcheck.ParseAdmin(rec.Admin)
		if err != nil {
			return nil, fmt.Errorf("admin state file %s: %w", s.path, err)
		}
		s.cur = a
	}
	return s, nil
}

// Get returns the admin state.
func (s *AdminStore) Get() agentcheck.Admin {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Set records a and then reports it. When the file cannot be written the
// state does not change.
func (s *AdminStore) Set(a agentcheck.Admin) error {
	if a == agentcheck.AdminNone {
		return errors.New("admin state: want ready, drain or maint")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := state.Save(s.path, adminRecord{Admin: a.String(), Changed: time.Now().UTC()}); err != nil {
		return fmt.Errorf("admin state: %w", err)
	}
	s.cur = a
	return nil
}

// adminHandler answers the admin commands with store and hands every
// other command to next. A nil store (no agent configured) refuses them.
func adminHandler(store *AdminStore, next control.Handler, log interface {
	Info(string, ...any)
}) control.Handler {
	return func(ctx context.Context, cmd string) (string, error) {
		a, err := agentcheck.ParseAdmin(cmd)
		if err != nil {
			return next(ctx, cmd)
		}
		if store == nil {
			return "", errors.New("no agent is configured (realserver.agent): nothing reports the admin state")
		}
		prev := store.Get()
		if err := store.Set(a); err != nil {
			return "", err
		}
		if prev != a {
			log.Info("admin state changed on the control socket", "from", prev.String(), "to", a.String())
		}
		return fmt.Sprintf("admin state %s (was %s)\n", a, prev), nil
	}
}

// RequestAdmin asks the daemon listening on socket to report admin state
// a (drain, ready or maint) from now on, and returns its answer.
func RequestAdmin(ctx context.Context, socket string, a agentcheck.Admin) (string, error) {
	if a == agentcheck.AdminNone {
		return "", errors.New("want ready, drain or maint")
	}
	body, err := control.Call(ctx, socket, a.String())
	var r *control.Refusal
	if errors.As(err, &r) {
		return "", fmt.Errorf("%s refused: %s", a, r.Problems)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(body, "\n"), nil
}
