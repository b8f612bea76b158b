package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/director/announce"
	"github.com/lvs-node/lvs-node/internal/kerneltest"
)

// needPeer finds a peer program: missing, the test is skipped locally
// and fails in CI (scripts/install-deps.sh installs it).
func needPeer(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// The shipped HA examples are read by the programs they are for:
// lvs-node check, keepalived -t and bird -p.
func TestHAExamples(t *testing.T) {
	for _, f := range []string{"director-active-backup.yaml", "director-active-active.yaml"} {
		code, out, errOut := runCLI(t, "check", "--config", filepath.Join("../../../examples/ha", f))
		if code != 0 || !strings.Contains(out, "valid director configuration") {
			t.Errorf("%s: %d %s %s", f, code, out, errOut)
		}
	}
	ka := needPeer(t, "keepalived")
	kerneltest.NeedRoot(t)
	// keepalived -t wants the interfaces: give it a namespace with them.
	script := "ip link add eth0 type veth peer name eth1 && exec " + ka + " -t -f ../../../examples/ha/keepalived.conf"
	if out, err := exec.Command("unshare", "-n", "sh", "-c", script).CombinedOutput(); err != nil {
		t.Errorf("keepalived -t: %v\n%s", err, out)
	}
	bird := needPeer(t, "bird")
	dir := t.TempDir()
	inc := filepath.Join(dir, "vips.conf")
	if err := os.WriteFile(inc, announce.Render(nil), 0o644); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile("../../../examples/ha/bird.conf")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(conf), "/etc/bird/lvs-node-vips.conf", inc)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bird, "-p", "-c", p).CombinedOutput(); err != nil {
		t.Errorf("bird -p: %v\n%s", err, out)
	}
}
