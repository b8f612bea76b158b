package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Orphans: a test binary that times out (go test -timeout) or is killed
// runs no deferred calls, so neither the VM nor the work directory would
// be cleaned up. The VM dies with the process that started it
// (boundToParent), and the next run removes work directories whose
// owner is gone (sweepWorkDirs).

// workDirPattern names the lab's work directories under the temp dir.
const workDirPattern = "lvs-node-lab-"

// ownerFile holds the pid of the process that made a work directory.
const ownerFile = "owner"

// boundToParent makes cmd's process get SIGKILL when the thread that
// started it ends: the caller keeps that thread (runtime.LockOSThread)
// until the process is waited for, so it ends only with this process.
func boundToParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// makeWorkDir makes a work directory under base ("" for the temp dir),
// owned by this process.
func makeWorkDir(base string) (string, error) {
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, workDirPattern)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// sweepWorkDirs removes the work directories under base whose owner
// process is gone, and those without an owner file (made before there
// was one) older than a day. It returns what it removed.
func sweepWorkDirs(base string, now time.Time) []string {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), workDirPattern) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		if !orphaned(dir, now) {
			continue
		}
		if os.RemoveAll(dir) == nil {
			removed = append(removed, dir)
		}
	}
	return removed
}

func orphaned(dir string, now time.Time) bool {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if errors.Is(err, os.ErrNotExist) {
		fi, err := os.Stat(dir)
		return err == nil && now.Sub(fi.ModTime()) > 24*time.Hour
	}
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	return !alive(pid)
}

// alive reports whether a process with pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// sweptNote is a log line for what a sweep removed.
func sweptNote(removed []string) string {
	if len(removed) == 0 {
		return ""
	}
	return fmt.Sprintf("lab: removed %d work directories of runs that died: %s\n", len(removed), strings.Join(removed, ", "))
}
