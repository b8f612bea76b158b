//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/toa/toatest"
)

// TestTOASuite runs the host's TOA suite inside the lab VM (Debian's 6.1
// kernel) to prove eBPF TOA portable, with the pins in the VM's real
// /sys/fs/bpf, then drives the commands: doctor, attach to the root
// cgroup, verify (the self-test), stats, status and detach.
func TestTOASuite(t *testing.T) {
	// IPv6 is a module in the VM's kernel; nothing else loads it here.
	if !moduleLoaded(t, "ipv6") {
		modprobe(t, "ipv6")
	}
	t.Run("suite", func(t *testing.T) {
		toatest.Run(t, toatest.Env{PinDir: "/sys/fs/bpf/lvs-node-e2e/toa"})
	})
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("lvs-node", args...).CombinedOutput()
		t.Logf("lvs-node %s:\n%s", strings.Join(args, " "), out)
		if err != nil {
			t.Fatalf("lvs-node %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	run("toa", "doctor")
	if _, err := os.Stat("/sys/fs/bpf/lvs-node"); !os.IsNotExist(err) {
		t.Fatalf("/sys/fs/bpf/lvs-node is there before the attach (left by an earlier test?): %v", err)
	}
	if out := run("toa", "attach", "--trusted", "192.0.2.0/24,2001:db8::/64", "--kinds", "254,253,200"); !strings.Contains(out, "attach sockops to /sys/fs/cgroup") {
		t.Fatalf("attach did not attach to the root cgroup")
	}
	t.Cleanup(func() { exec.Command("lvs-node", "toa", "detach").Run() })
	if out := run("toa", "verify"); !strings.Contains(out, "PASS") || strings.Contains(out, "skip") {
		t.Fatal("verify did not pass every case")
	}
	if out := run("toa", "stats"); !strings.Contains(out, "syn_recv_sock_toa") {
		t.Fatal("stats lacks the counters")
	}
	run("toa", "status")
	run("toa", "detach")
	if _, err := os.Stat("/sys/fs/bpf/lvs-node"); !os.IsNotExist(err) {
		t.Fatalf("/sys/fs/bpf/lvs-node left after detach: %v", err)
	}
	if out := run("toa", "status"); !strings.Contains(out, "not attached") {
		t.Fatal("still attached after detach")
	}
}
