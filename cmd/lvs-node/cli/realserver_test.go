package cli

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeRSDaemon listens on a unix socket like the realserver daemon and
// answers each command with a fixed reply; String lists the commands it
// received.
type fakeRSDaemon struct {
	mu    sync.Mutex
	cmds  []string
	reply map[string]string
}

func (f *fakeRSDaemon) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.cmds, ",")
}

func startFakeRSDaemon(t *testing.T, sock string, reply map[string]string) *fakeRSDaemon {
	t.Helper()
	f := &fakeRSDaemon{reply: reply}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			cmd := strings.TrimSpace(line)
			f.mu.Lock()
			f.cmds = append(f.cmds, cmd)
			r := f.reply[cmd]
			f.mu.Unlock()
			_, _ = c.Write([]byte(r))
			c.Close()
		}
	}()
	return f
}

func runMain(args ...string) (string, int) {
	var out bytes.Buffer
	code := Main(args, &out, &out)
	return out.String(), code
}

func TestRealserverReloadAndStatus(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "rs.sock")
	cfg := filepath.Join(dir, "rs.yaml")
	good := "realserver:\n  state_dir: " + dir + "/state\n  vips:\n    - {address: 10.0.0.100, mode: dr}\nlisten:\n  control: " + sock + "\n"
	f := startFakeRSDaemon(t, sock, map[string]string{
		"reload": "ok\nip addr add 10.0.0.100/32 dev lo label lo:lvs\n",
		"status": `ok
{"config":"/etc/lvs-node/realserver.yaml","vips":[{"address":"10.0.0.100","mode":"dr","where":["lo"],"applied":true}],` +
			`"sysctls":[{"key":"net/ipv4/conf/all/arp_ignore","want":"1","current":"1","original":"0","recorded":true}],"repairs":4,"reloads":1}
`,
	})

	// A bad file is refused before the daemon is asked.
	if err := os.WriteFile(cfg, []byte(strings.Replace(good, "mode: dr", "mode: dsr", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runMain("realserver", "reload", "--config", cfg)
	if code != 2 || !strings.Contains(out, "rs.yaml:4:29: realserver.vips[0].mode: want dr, tun or nat, got \"dsr\"") {
		t.Errorf("reload of a bad file: exit %d\n%s", code, out)
	}
	if f.String() != "" {
		t.Errorf("a bad file reached the daemon: %s", f)
	}

	if err := os.WriteFile(cfg, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runMain("realserver", "reload", "--config", cfg)
	if code != 0 || out != "ip addr add 10.0.0.100/32 dev lo label lo:lvs\nreloaded, 1 changes\n" {
		t.Errorf("reload: exit %d\n%s", code, out)
	}
	out, code = runMain("realserver", "status", "--socket", sock)
	want := `config: /etc/lvs-node/realserver.yaml
vips:
  10.0.0.100 dr on lo: applied
sysctls (current, recorded original):
  net/ipv4/conf/all/arp_ignore = 1, original 0
repairs: 4
reloads: 1
`
	if code != 0 || out != want {
		t.Errorf("status: exit %d\n%s\nwant:\n%s", code, out, want)
	}
	if got := f.String(); got != "reload,status" {
		t.Errorf("daemon received %q, want reload,status", got)
	}

	// A refusal from the daemon is an error naming the problem.
	f.mu.Lock()
	f.reply["reload"] = "error\nrs.yaml:4:7: realserver.vips[0].gateway: gateway 172.16.0.1 is not on a connected network\n"
	f.mu.Unlock()
	out, code = runMain("realserver", "reload", "--config", cfg)
	if code == 0 || !strings.Contains(out, "reload refused, the previous configuration stays in effect") ||
		!strings.Contains(out, "is not on a connected network") {
		t.Errorf("refused reload: exit %d\n%s", code, out)
	}
	// The socket turned off: a clear error.
	noCtl := filepath.Join(dir, "noctl.yaml")
	if err := os.WriteFile(noCtl, []byte(strings.SplitN(good, "listen:", 2)[0]+"listen: {control: \"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runMain("realserver", "status", "--config", noCtl); code == 0 || !strings.Contains(out, "listen.control is not set") {
		t.Errorf("status without listen.control: exit %d\n%s", code, out)
	}
}
