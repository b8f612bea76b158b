package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestRealserverAdminCommands(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "rs.sock")
	f := startFakeRSDaemon(t, sock, map[string]string{
		"drain": "ok\nadmin state drain (was ready)\n",
		"ready": "ok\nadmin state ready (was drain)\n",
		"maint": "error\nno agent is configured (realserver.agent): nothing reports the admin state\n",
	})
	out, code := runMain("realserver", "drain", "--socket", sock)
	if code != 0 || out != "admin state drain (was ready)\n" {
		t.Errorf("drain: exit %d\n%s", code, out)
	}
	out, code = runMain("realserver", "ready", "--socket", sock)
	if code != 0 || out != "admin state ready (was drain)\n" {
		t.Errorf("ready: exit %d\n%s", code, out)
	}
	out, code = runMain("realserver", "maint", "--socket", sock)
	if code == 0 || !strings.Contains(out, "maint refused: no agent is configured") {
		t.Errorf("maint: exit %d\n%s", code, out)
	}
	if got := f.String(); got != "drain,ready,maint" {
		t.Errorf("daemon received %q", got)
	}
	if out, code := runMain("realserver", "drain", "extra", "--socket", sock); code == 0 {
		t.Errorf("drain with an argument: exit 0\n%s", out)
	}
}
