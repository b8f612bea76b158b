package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// need skips a test when a tool is missing here, and fails it under
// CI=true, where scripts/install-deps.sh must have installed it.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err == nil {
			continue
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: scripts/install-deps.sh installs it", tool)
		}
		t.Skipf("%s is missing (scripts/install-deps.sh installs it)", tool)
	}
}

// repoRoot is the repository's top directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// packages are the .deb and .rpm of one architecture, built once per test
// binary with packaging/build.sh, as make packages builds them.
type packages struct {
	deb, rpm string
	err      error
	out      []byte
}

// The packages of each architecture (arch -> func() *packages), built in
// workDir, which TestMain removes at the end.
var (
	buildOnce sync.Map
	workDir   string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lvs-node-pkgtest-")
	if err != nil {
		panic(err)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// built returns the .deb and .rpm of arch, building them on first use.
// With LVS_PACKAGES_DIR set (make packages), they are those found there
// instead.
func built(t *testing.T, arch string) (deb, rpm string) {
	t.Helper()
	if dir := os.Getenv("LVS_PACKAGES_DIR"); dir != "" {
		rpmArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[arch]
		debs, _ := filepath.Glob(filepath.Join(dir, "lvs-node_*_"+arch+".deb"))
		rpms, _ := filepath.Glob(filepath.Join(dir, "lvs-node-*."+rpmArch+".rpm"))
		if len(debs) != 1 || len(rpms) != 1 {
			t.Fatalf("%s: want one .deb and one .rpm for %s, found %v %v", dir, arch, debs, rpms)
		}
		return debs[0], rpms[0]
	}
	need(t, "go")
	f, _ := buildOnce.LoadOrStore(arch, sync.OnceValue(func() *packages {
		dir := filepath.Join(workDir, arch)
		cmd := exec.Command("bash", filepath.Join(repoRoot(t), "packaging", "build.sh"), arch, dir)
		cmd.Env = append(os.Environ(), "VERSION=0.1.0-test")
		out, err := cmd.CombinedOutput()
		p := &packages{err: err, out: out}
		debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
		rpms, _ := filepath.Glob(filepath.Join(dir, "*.rpm"))
		if len(debs) == 1 && len(rpms) == 1 {
			p.deb, p.rpm = debs[0], rpms[0]
		}
		return p
	}))
	p := f.(func() *packages)()
	if p.err != nil || p.deb == "" {
		t.Fatalf("packaging/build.sh %s: %v\n%s", arch, p.err, p.out)
	}
	return p.deb, p.rpm
}

// run runs a command and returns its standard output, failing the test
// with everything it printed when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out, stderr)
	}
	return string(out)
}
