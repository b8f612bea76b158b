package toa_test

import (
	"testing"

	"github.com/lvs-node/lvs-node/toa/toatest"
)

// TestSuite runs the TOA suite on the host kernel, in a namespace and
// cgroup the test makes, with pins on a BPF file system of its own.
func TestSuite(t *testing.T) {
	toatest.Run(t, toatest.Env{PinDir: toatest.PinDir(t)})
}
