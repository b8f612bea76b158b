package state

import (
	"errors"
	"os/exec"
	"testing"
	"time"
)

// TestLockDirWaitsBounded: a directory flocked by another process (flock(1)
// holding it) makes LockDir give up after its wait with ErrDirBusy; once
// the holder is gone the lock is taken.
func TestLockDirWaitsBounded(t *testing.T) {
	dir := t.TempDir()
	holder := exec.Command("flock", "-x", dir, "sleep", "1")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	time.Sleep(200 * time.Millisecond) // let it take the lock
	start := time.Now()
	if _, err := LockDir(dir, 100*time.Millisecond); !errors.Is(err, ErrDirBusy) {
		t.Fatalf("LockDir while held: %v, want ErrDirBusy", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("LockDir waited %v, more than its bound", d)
	}
	release, err := LockDir(dir, 5*time.Second)
	if err != nil {
		t.Fatalf("LockDir after the holder: %v", err)
	}
	release()
}
