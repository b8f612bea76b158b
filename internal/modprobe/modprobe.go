package modprobe

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// DefaultTimeout bounds one module load.
const DefaultTimeout = 30 * time.Second

// ErrTimeout means modprobe did not finish in time; it was killed.
var ErrTimeout = errors.New("modprobe did not finish in time")

// Load runs "modprobe name", giving up after timeout (DefaultTimeout when
// 0) or when ctx ends, whichever comes first. A modprobe that is killed
// but whose children keep its output open is waited for one more second
// at most.
func Load(ctx context.Context, name string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "modprobe", name)
	cmd.WaitDelay = time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("modprobe %s: %w (after %s): %w", name, ErrTimeout, time.Since(start).Round(time.Millisecond), ctx.Err())
	}
	if err != nil {
		msg := strings.TrimSpace(string(out))
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return fmt.Errorf("modprobe %s: %w: %s", name, err, msg)
		}
		return fmt.Errorf("modprobe %s: %w", name, err)
	}
	return nil
}
