package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

const moduleRoot = "../../../toa/testdata/module-root"

func TestToaCommandsOnFixtures(t *testing.T) {
	pins := filepath.Join(t.TempDir(), "none")
	code, out, errOut := runCLI(t, "toa", "status", "--root", moduleRoot, "--pin-dir", pins)
	if code != 0 || !strings.Contains(out, "eBPF TOA: not attached") || !strings.Contains(out, "TOA kernel module: toa version 2.0.0.0") ||
		!strings.Contains(out, "parameter tcpopt_addr = 254") || !strings.Contains(out, "syn_recv_sock_toa        2201") {
		t.Errorf("status: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "toa", "stats", "--root", moduleRoot, "--pin-dir", pins)
	if code != 0 || !strings.Contains(out, "module toa (/proc/net/toa_stats):") || !strings.Contains(out, "syn_recv_sock_toa        :      1204        997 ") {
		t.Errorf("stats: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "toa", "doctor", "--root", "../../../toa/testdata/old-root")
	if code != 1 || !strings.Contains(out, "FAIL  kernel") || !strings.Contains(errOut, "problem(s) stop eBPF TOA") {
		t.Errorf("doctor: %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "toa", "attach", "--root", moduleRoot, "--pin-dir", pins, "--trusted", "10.0.0.0/24")
	if code == 0 || !strings.Contains(errOut, "TOA kernel module is loaded (toa)") {
		t.Errorf("attach with a module: %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "toa", "attach", "--pin-dir", pins)
	if code == 0 || !strings.Contains(errOut, "--trusted is required") {
		t.Errorf("attach without --trusted: %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "toa", "stats", "--root", "../../../toa/testdata/old-root", "--pin-dir", pins)
	if code == 0 || !strings.Contains(errOut, "no TOA counters") {
		t.Errorf("stats with nothing: %d %s", code, errOut)
	}
}
