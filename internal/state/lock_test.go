package state

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLockIsExclusivePerRoleAndNamesTheHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	first, err := TryLock(dir, "director")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "director.lock"))
	if err != nil || !strings.HasPrefix(string(b), "pid "+strconv.Itoa(os.Getpid())+" (") {
		t.Fatalf("lock file holds %q (%v), want the holder's pid and command", b, err)
	}
	// A second holder (a separate open file: flock treats it as another
	// process) is refused and told who holds it.
	_, err = TryLock(dir, "director")
	var le *LockedError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) ||
		!strings.Contains(err.Error(), dir) {
		t.Fatalf("second lock: %v", err)
	}
	// The other role has its own lock.
	rs, err := TryLock(dir, "realserver")
	if err != nil {
		t.Fatalf("realserver lock beside the director's: %v", err)
	}
	defer rs.Release()
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	again, err := TryLock(dir, "director")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Release()
}
