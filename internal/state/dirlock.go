package state

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrDirBusy means another process held a directory's lock for longer
// than the wait allowed.
var ErrDirBusy = errors.New("another process holds the directory's lock")

// LockDir takes the exclusive flock(2) of directory dir, waiting at most
// wait for another holder (a daemon and a one-off command changing the same
// pins). It returns the function that releases it.
func LockDir(dir string, wait time.Duration) (release func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%s: %w (waited %s)", dir, ErrDirBusy, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
