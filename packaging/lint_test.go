package packaging_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/rsagent"
)

// lintianWarnings are the warnings lintian may still give, each with the
// reason it stays (docs/packaging.md lists them too). Anything else, and
// any error, fails the test.
var lintianWarnings = map[string]string{
	"initial-upload-closes-no-bugs": "the changelog closes no Debian ITP bug: the package is not uploaded to Debian",
	"non-standard-file-perm":        "the configuration files are 0640: they may come to hold secrets",
}

func TestLintian(t *testing.T) {
	need(t, "lintian")
	deb, _ := built(t, "amd64")
	cmd := exec.Command("lintian", "--pedantic", deb)
	out, err := cmd.CombinedOutput()
	// lintian exits 2 when it reports an error; warnings are checked below.
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 2) {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
	tag := regexp.MustCompile(`^([EWIPX]): lvs-node: ([a-z0-9.+-]+)`)
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		m := tag.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		switch m[1] {
		case "E":
			t.Errorf("lintian error: %s", sc.Text())
		case "W":
			if _, ok := lintianWarnings[m[2]]; !ok {
				t.Errorf("new lintian warning (fix it, or list it with its reason here and in docs/packaging.md): %s", sc.Text())
			}
			seen[m[2]] = true
		}
	}
	for w, why := range lintianWarnings {
		if !seen[w] {
			t.Errorf("lintian no longer warns %s (%s): take it off the list", w, why)
		}
	}
	t.Logf("lintian:\n%s", out)
}

// unit is a parsed systemd unit: key -> values, in order.
type unit map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			u[k] = append(u[k], v)
		}
	}
	return u
}

func (u unit) one(t *testing.T, key string) string {
	t.Helper()
	if len(u[key]) != 1 {
		t.Fatalf("%s: %q, want one value", key, u[key])
	}
	return u[key][0]
}

// The units start, check and reload the files the commands default to,
// and their runtime directories hold the default control sockets.
func TestUnitsMatchDaemons(t *testing.T) {
	for _, tc := range []struct {
		role, config, socket string
		caps                 []string
	}{
		{"director", "/etc/lvs-node/director.yaml", director.DefaultControl, []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_MODULE"}},
		{"realserver", "/etc/lvs-node/realserver.yaml", rsagent.DefaultControl, []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_MODULE", "CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"}},
	} {
		u := readUnit(t, filepath.Join(repoRoot(t), "packaging/systemd/lvs-node-"+tc.role+".service"))
		checks := map[string]string{
			"Type":                  "notify",
			"ExecStartPre":          "/usr/sbin/lvs-node check --config " + tc.config,
			"ExecStart":             "/usr/sbin/lvs-node " + tc.role + " --config " + tc.config,
			"ExecReload":            "/usr/sbin/lvs-node " + tc.role + " reload --config " + tc.config,
			"Restart":               "on-failure",
			"RuntimeDirectory":      "lvs-node/" + tc.role,
			"StateDirectory":        "lvs-node",
			"CapabilityBoundingSet": strings.Join(tc.caps, " "),
			"ProtectSystem":         "strict",
			"ProtectHome":           "yes",
			"PrivateTmp":            "yes",
			"NoNewPrivileges":       "yes",
		}
		for k, want := range checks {
			if got := u.one(t, k); got != want {
				t.Errorf("%s unit: %s=%s, want %s", tc.role, k, got, want)
			}
		}
		if dir := filepath.Dir(tc.socket); dir != "/run/"+u.one(t, "RuntimeDirectory") {
			t.Errorf("%s: default control socket %s is not in RuntimeDirectory=%s", tc.role, tc.socket, u.one(t, "RuntimeDirectory"))
		}
		if _, ok := u["AmbientCapabilities"]; ok {
			t.Errorf("%s unit grants ambient capabilities: it runs as root with a bounding set", tc.role)
		}
	}
}

// systemd-analyze verify finds nothing to say about either unit as
// installed: their executables, man pages and dependencies exist.
func TestSystemdAnalyzeVerify(t *testing.T) {
	need(t, "systemd-analyze", "dpkg-deb")
	deb, _ := built(t, "amd64")
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)
	// The targets the units name come from the systemd installed here, as
	// on any host the package goes to.
	host, err := filepath.Glob("/lib/systemd/system/*.target")
	if err != nil || len(host) == 0 {
		t.Fatalf("no systemd targets in /lib/systemd/system (%v): install systemd", err)
	}
	run(t, "cp", append(append([]string{"-a"}, host...), filepath.Join(root, "lib/systemd/system"))...)
	for _, role := range []string{"director", "realserver"} {
		unitPath := filepath.Join(root, "lib/systemd/system/lvs-node-"+role+".service")
		cmd := exec.Command("systemd-analyze", "verify", "--root="+root, unitPath)
		cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(root, "usr/share/man"))
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) != 0 {
			t.Errorf("systemd-analyze verify lvs-node-%s.service: %v\n%s", role, err, out)
		}
		// The exposure score, for the record.
		sec, _ := exec.Command("systemd-analyze", "security", "--offline=true", "--root="+root, unitPath).CombinedOutput()
		if i := strings.LastIndex(string(sec), "Overall exposure"); i >= 0 {
			t.Logf("%s", strings.TrimSpace(string(sec[i:])))
		}
	}
}
