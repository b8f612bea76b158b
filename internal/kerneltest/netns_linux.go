package kerneltest

import (
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// NeedRoot skips the test when not running as root, except in CI
// (CI=true), where a real-kernel test that cannot run is a failure.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("real-kernel test needs root in CI")
	}
	t.Skip("real-kernel test needs root")
}

// FreshNetns locks the calling goroutine to its thread and moves that
// thread into a new network namespace for the rest of the test. The thread
// goes back to its namespace when the test ends; if that fails it stays
// locked, so the Go runtime retires it instead of reusing it.
func FreshNetns(t testing.TB) netns.NsHandle {
	t.Helper()
	NeedRoot(t)
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current network namespace: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("back to the original network namespace: %v", err)
			return
		}
		ns.Close()
		orig.Close()
		runtime.UnlockOSThread()
	})
	return ns
}
