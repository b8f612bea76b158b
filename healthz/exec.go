package healthz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// execPath is the PATH of a check command: the command itself is named
// by an absolute path, but a script it runs may call common tools.
const execPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// execChecker runs a command in a process group of its own, with the
// service and the real server in LVS_* environment variables (see
// ExecEnv). Exit status 0 is healthy. At the timeout the whole group is
// killed; so is whatever the command left behind in its group when it
// exits.
type execChecker struct {
	cmd     string
	args    []string
	env     []string
	timeout time.Duration
}

func newExec(s *Spec, env []string) (*execChecker, error) {
	if len(s.Command) == 0 || s.Command[0] != '/' {
		return nil, fmt.Errorf("command must be an absolute path, got %q", s.Command)
	}
	return &execChecker{cmd: s.Command, args: s.Args, env: append([]string{execPath}, env...), timeout: s.Timeout.D()}, nil
}

func (c *execChecker) Check(ctx context.Context) Result {
	start := time.Now()
	cmd := exec.CommandContext(ctx, c.cmd, c.args...)
	cmd.Env = c.env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 100 * time.Millisecond // a pipe held open by a stray process
	out := &capped{max: 512}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Start()
	if err != nil {
		return fail(start, KindOther, "run %s: %v", c.cmd, errors.Unwrap(err))
	}
	err = cmd.Wait()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what it left in its group
	if ctx.Err() == context.DeadlineExceeded {
		return fail(start, KindTimeout, "timeout after %s (process group killed)", c.timeout)
	}
	if ctx.Err() != nil {
		return fail(start, KindOther, "canceled")
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		msg := "exit status " + strconv.Itoa(ee.ExitCode())
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			msg = "killed by " + ws.Signal().String()
		}
		if o := clip(out.String(), 80); o != "" {
			msg += ": " + o
		}
		return fail(start, KindExit, "%s", msg)
	}
	if err != nil {
		return fail(start, KindOther, "%v", err)
	}
	return pass(start, "exit 0")
}

// capped keeps the first max bytes written to it.
type capped struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
