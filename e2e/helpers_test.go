//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// modprobe loads kernel modules in the VM, failing the test when one is
// missing.
func modprobe(t testing.TB, mods ...string) {
	t.Helper()
	for _, m := range mods {
		if out, err := exec.Command("modprobe", m).CombinedOutput(); err != nil {
			t.Fatalf("modprobe %s: %v: %s", m, err, out)
		}
	}
}

// moduleLoaded reports whether /proc/modules lists mod.
func moduleLoaded(t testing.TB, mod string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/modules")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, mod+" ") {
			return true
		}
	}
	return false
}
