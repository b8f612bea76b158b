package ipvs

import (
	"context"
	"fmt"
)

// StartSync starts a connection-sync daemon. The kernel refuses a second
// daemon of the same state (EEXIST), an unknown interface (ENODEV) and a
// group that is not multicast (EINVAL). The call returns once the
// kernel's sync threads run.
func (c *Client) StartSync(ctx context.Context, d SyncDaemon) error {
	if err := CheckSyncDaemon(d); err != nil {
		return err
	}
	if err := c.syncCall(ctx, d, true); err != nil {
		return fmt.Errorf("start %s sync daemon on %s: %w", d.State, d.Interface, err)
	}
	return nil
}

// StopSync stops the sync daemon of state s; the kernel answers ESRCH
// when none runs.
func (c *Client) StopSync(ctx context.Context, s SyncState) error {
	if s != SyncMaster && s != SyncBackup {
		return fmt.Errorf("stop sync daemon: state must be master or backup, got %d", uint32(s))
	}
	if err := c.syncCall(ctx, SyncDaemon{State: s}, false); err != nil {
		return fmt.Errorf("stop %s sync daemon: %w", s, err)
	}
	return nil
}

func (c *Client) syncCall(ctx context.Context, d SyncDaemon, start bool) error {
	cmd := uint8(cmdDelDaemon)
	if start {
		cmd = cmdNewDaemon
	}
	return c.call(ctx, nlmFAck, cmd, func(e *encoder) { e.syncDaemon(d, start) }, nil)
}

// SyncDaemons returns the running sync daemons, master first, as the
// kernel reports them (with the defaults it filled in).
func (c *Client) SyncDaemons(ctx context.Context) ([]SyncDaemon, error) {
	var out []SyncDaemon
	err := c.call(ctx, nlmFDump, cmdGetDaemon, nil, func(p []byte) error {
		d, err := parseSyncDaemonMsg(p)
		if err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list sync daemons: %w", err)
	}
	return out, nil
}
