package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrLocked means another process holds the state directory for the same
// role.
var ErrLocked = errors.New("state directory is in use")

// LockedError names the process that holds a state directory. errors.Is
// matches it with ErrLocked.
type LockedError struct {
	Dir, Role string
	// Holder is what the holder wrote in the lock file: its pid and
	// command line ("" when it could not be read).
	Holder string
}

func (e *LockedError) Error() string {
	h := e.Holder
	if h == "" {
		h = "a process that did not say who it is"
	}
	return fmt.Sprintf("%s: lvs-node %s state directory %s is held by %s: stop it first (a daemon, --once, up or down), or give this one another state_dir",
		ErrLocked, e.Role, e.Dir, h)
}

// Is reports whether target is ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock is an exclusive hold on one role's records in a state directory,
// taken with flock(2) on ROLE.lock: the kernel releases it when the
// process ends, however it ends, so a stale lock cannot outlive its
// holder. The file names the holder (pid and command line) for the error
// a second process gets.
type Lock struct {
	f *os.File
}

// LockFile is the name of role's lock file in the state directory.
func LockFile(role string) string { return role + ".lock" }

// TryLock takes the lock of role (director, realserver) on dir without
// waiting, creating dir (mode 0700) when needed. When another process
// holds it the error is a *LockedError naming that process.
func TryLock(dir, role string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	path := filepath.Join(dir, LockFile(role))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			holder = strings.Join(strings.Fields(string(b)), " ")
		}
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &LockedError{Dir: dir, Role: role, Holder: holder}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(describeSelf()), 0)
	}
	return &Lock{f: f}, nil
}

// describeSelf is "pid N: command line".
func describeSelf() string {
	cmd := strings.Join(os.Args, " ")
	if b, err := os.ReadFile("/proc/self/cmdline"); err == nil && len(b) > 0 {
		cmd = strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " ")
	}
	return "pid " + strconv.Itoa(os.Getpid()) + " (" + cmd + ")\n"
}

// Release gives the lock up. The file stays: removing it would let a
// third process lock a new file while a second one waits on the old.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}
