package fullnat

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
)

// TestProbeHere runs the probe on this machine's kernel. The development
// and CI hosts have everything but IPVS (which the lab VM has, where the
// e2e tests run the probe through lvs-node check).
func TestProbeHere(t *testing.T) {
	kerneltest.NeedRoot(t)
	needs := Probe()
	for _, n := range needs {
		t.Logf("%s: detail %q, error %v", n.What, n.Detail, n.Err)
	}
	if len(needs) != 4 {
		t.Fatalf("%d needs, want 4", len(needs))
	}
	_, ipvs := os.Stat("/proc/sys/net/ipv4/vs")
	for _, n := range needs[1:] {
		if n.Err != nil {
			t.Errorf("%s: %v", n.What, n.Err)
		}
	}
	err := ProbeError(needs)
	if ipvs != nil && os.Getenv("LVS_LAB_GUEST") == "" {
		// No IPVS here: the probe says so, naming it.
		if err == nil || !errors.Is(err, ErrKernel) || !strings.Contains(err.Error(), "IPVS") {
			t.Fatalf("probe error: %v", err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	// Nothing was left in this namespace.
	if out, _ := os.ReadFile("/proc/net/dev"); strings.Contains(string(out), "lvsprobe") {
		t.Fatal("the probe's veth is in the host's namespace")
	}
}
