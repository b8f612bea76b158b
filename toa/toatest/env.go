package toatest

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
)

// PinDir returns a pin directory on a BPF file system of its own,
// mounted for the test on a temporary directory and unmounted after it
// (with everything pinned there).
func PinDir(t testing.TB) string {
	t.Helper()
	kerneltest.NeedRoot(t)
	mnt, err := os.MkdirTemp("", "lvs-node-bpffs-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", mnt, "bpf", 0, "mode=0700"); err != nil {
		os.Remove(mnt)
		t.Fatalf("mount a BPF file system: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			return
		}
		os.Remove(mnt)
	})
	return filepath.Join(mnt, "lvs-node", "toa")
}
