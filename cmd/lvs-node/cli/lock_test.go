package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/state"
)

// TestSecondProcessOnStateDirRefused: while another process holds a
// role's state directory, up, down and a second daemon are refused with
// the holder named, before anything is read or changed.
func TestSecondProcessOnStateDirRefused(t *testing.T) {
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "rs.yaml")
	body := "realserver:\n  state_dir: " + stateDir + "\n  vips: [{address: 10.0.0.100, mode: dr}]\nlisten: {control: \"\"}\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	holder, err := state.TryLock(stateDir, "realserver")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	for _, args := range [][]string{{"realserver", "up"}, {"realserver", "down"}, {"realserver"}} {
		out, code := runMain(append(args, "--config", cfg)...)
		if code == 0 || !strings.Contains(out, "state directory "+stateDir+" is held by pid "+strconv.Itoa(os.Getpid())) {
			t.Errorf("%v beside a holder: exit %d\n%s", args, code, out)
		}
	}
	if _, err := os.Stat(filepath.Join(stateDir, "realserver.json")); !os.IsNotExist(err) {
		t.Errorf("a refused process wrote records: %v", err)
	}

	// The director's lock is its own: held here, it refuses --once, down
	// and a daemon.
	dcfg := filepath.Join(dir, "d.yaml")
	body = "director:\n  state_dir: " + stateDir + "\nlisten: {control: \"\", metrics: \"\"}\nvirtual_services: []\n"
	if err := os.WriteFile(dcfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	dh, err := state.TryLock(stateDir, "director")
	if err != nil {
		t.Fatalf("director lock beside the real server's: %v", err)
	}
	defer dh.Release()
	for _, args := range [][]string{{"director", "--once"}, {"director", "down"}, {"director"}} {
		out, code := runMain(append(args, "--config", dcfg)...)
		if code == 0 || !strings.Contains(out, "lvs-node director state directory "+stateDir+" is held by pid ") {
			t.Errorf("%v beside a holder: exit %d\n%s", args, code, out)
		}
	}
}
