package director

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/lvs-node/lvs-node/internal/state"
)

// HAProblems checks the peers the HA settings of cfg rely on, without
// changing anything: BIRD answering on its socket with the include file's
// protocols loaded, birdc installed, the include file's directory, the
// sync daemon's interface, and keepalived running when a role was set by
// it. Each problem is one line; none means all is well. Every check is
// bounded by ctx and by the announcer's timeout.
func HAProblems(ctx context.Context, cfg *Config) []string {
	var out []string
	var st haState
	if _, err := state.Load(filepath.Join(cfg.Director.StateDir, haStateFile), &st); err != nil {
		out = append(out, fmt.Sprintf("HA state: %v", err))
	}
	if r := parseRole(st.Role); r != Standalone && keepalivedPID() == 0 {
		out = append(out, fmt.Sprintf("keepalived is not running: the HA role stays %s (set %s) until its notify hooks run lvs-node director ha", r, st.RoleSince.Format(time.RFC3339)))
	}
	if st.Drained {
		out = append(out, "the director is drained (lvs-node director ha drain): it announces no VIP until lvs-node director ha ready")
	}
	if s := cfg.HA.SyncDaemon; s != nil {
		if _, err := net.InterfaceByName(s.Interface); err != nil {
			out = append(out, fmt.Sprintf("sync_daemon.interface %s: %v", s.Interface, err))
		}
	}
	if a := cfg.HA.Announce; a != nil {
		if _, err := exec.LookPath(a.BIRD.Birdc); err != nil {
			out = append(out, fmt.Sprintf("announce.bird.birdc %s: not found (Debian: apt-get install bird2): %v", a.BIRD.Birdc, err))
		} else {
			if v, err := birdAnnouncer(a).Status(ctx); err != nil {
				out = append(out, fmt.Sprintf("BIRD: %v", err))
			} else if v == "" {
				out = append(out, "BIRD: answered without a version")
			}
		}
		// The file is replaced by a rename inside its directory.
		if fi, err := os.Stat(filepath.Dir(a.BIRD.IncludeFile)); err != nil || !fi.IsDir() {
			out = append(out, fmt.Sprintf("announce.bird.include_file: directory %s does not exist", filepath.Dir(a.BIRD.IncludeFile)))
		}
	}
	return out
}
