package packaging_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// chroot makes a throwaway root with busybox as its shell and tools, as
// dpkg --root and rpm --root run maintainer scripts chrooted into it.
// Nothing on the host is touched: the scripts find no systemd, no
// invoke-rc.d and no recorded state there.
func chroot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("installing into a throwaway root needs root")
		}
		t.Skip("installing into a throwaway root needs root")
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static: %v", err)
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "dev", "tmp", "run", "etc", "var/log", "var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available", "etc/hostname"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	run(t, "chroot", root, "/bin/busybox", "--install", "-s", "/bin")
	return root
}

// tree lists what is under root, apart from the shell's applets and the
// package managers' own databases and logs.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, root)
		switch rel {
		case "/bin", "/var/lib/dpkg", "/var/lib/rpm":
			return fs.SkipDir
		case "", "/var/log/dpkg.log":
			return nil
		}
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// added lists what after has that before had not.
func added(before, after []string) []string {
	var out []string
	for _, p := range after {
		if !slices.Contains(before, p) {
			out = append(out, p)
		}
	}
	return out
}

func writeIn(t *testing.T, root, path, content string) {
	t.Helper()
	p := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// notStarted checks that no service runs in root: no pid file, no log.
func notStarted(t *testing.T, root, when string) {
	t.Helper()
	for _, p := range []string{"run/lvs-node-director.pid", "run/lvs-node-realserver.pid", "var/log/lvs-node"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s: %s exists: a service was started", when, p)
		}
	}
}

// The .deb installs into a throwaway root without starting anything, runs
// from it, upgrades over itself, refuses removal while the real server's
// recorded settings cannot be restored, and leaves only its conffiles and
// state after removal and nothing after purge.
func TestDebInstallRemovePurge(t *testing.T) {
	need(t, "dpkg", "chroot")
	deb, _ := built(t, "amd64")
	root := chroot(t)
	dpkg := func(args ...string) (string, error) {
		out, err := exec.Command("dpkg", append([]string{"--root=" + root, "--log=" + filepath.Join(root, "var/log/dpkg.log")}, args...)...).CombinedOutput()
		return string(out), err
	}
	before := tree(t, root)
	if out, err := dpkg("-i", deb); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	notStarted(t, root, "after install")
	if v := run(t, "chroot", root, "/usr/sbin/lvs-node", "version"); !versionLine.MatchString(v) {
		t.Errorf("lvs-node version in the root:\n%s", v)
	}
	// The daemons' state and logs, as running them leaves them.
	writeIn(t, root, "var/lib/lvs-node/director.json", "{}\n")
	writeIn(t, root, "var/log/lvs-node/director.log", "applied\n")
	// An upgrade (over the same version) starts nothing that was stopped.
	if out, err := dpkg("-i", deb); err != nil {
		t.Fatalf("dpkg -i over itself: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "run/lvs-node-director.pid")); err == nil {
		t.Error("the upgrade started the director")
	}

	// Recorded real-server settings that cannot be restored (the file
	// does not validate) keep the package, and the tool, installed.
	writeIn(t, root, "var/lib/lvs-node/realserver.json", "{}\n")
	good, err := os.ReadFile(filepath.Join(root, "etc/lvs-node/realserver.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, root, "etc/lvs-node/realserver.yaml", "realserver:\n  vips: [{address: 10.0.0.100, mode: bogus}]\n")
	out, err := dpkg("-r", "lvs-node")
	if err == nil || !strings.Contains(out, `"lvs-node realserver down" failed`) || !strings.Contains(out, "realserver.yaml:2") {
		t.Fatalf("removal with a restore that fails: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/sbin/lvs-node")); err != nil {
		t.Fatal("the failed removal removed the binary")
	}
	writeIn(t, root, "etc/lvs-node/realserver.yaml", string(good))
	os.Remove(filepath.Join(root, "var/lib/lvs-node/realserver.json"))

	if out, err := dpkg("-r", "lvs-node"); err != nil {
		t.Fatalf("dpkg -r: %v\n%s", err, out)
	}
	want := []string{
		"/etc/init.d/", "/etc/init.d/lvs-node-director", "/etc/init.d/lvs-node-realserver",
		"/etc/lvs-node/", "/etc/lvs-node/director.yaml", "/etc/lvs-node/realserver.yaml",
		"/var/lib/lvs-node/", "/var/lib/lvs-node/director.json",
		"/var/log/lvs-node/", "/var/log/lvs-node/director.log",
	}
	if got := added(before, tree(t, root)); !slices.Equal(got, want) {
		t.Errorf("after dpkg -r, left:\n%s\nwant the conffiles, state and logs:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out, err := dpkg("-P", "lvs-node"); err != nil {
		t.Fatalf("dpkg -P: %v\n%s", err, out)
	}
	if got := added(before, tree(t, root)); len(got) != 0 {
		t.Errorf("after purge, left:\n%s", strings.Join(got, "\n"))
	}
	if gone := added(tree(t, root), before); len(gone) != 0 {
		t.Errorf("purge removed what was there before:\n%s", strings.Join(gone, "\n"))
	}
}

// The .rpm installs into a throwaway root without starting anything,
// upgrades over itself ($1 = 2) and leaves only the state behind after
// erase (rpm has no purge).
func TestRPMInstallErase(t *testing.T) {
	need(t, "rpm", "chroot")
	_, rpmFile := built(t, "amd64")
	root := chroot(t)
	rpm := func(args ...string) (string, error) {
		out, err := exec.Command("rpm", append([]string{"--root", root, "--dbpath", "/var/lib/rpm"}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := rpm("--initdb"); err != nil {
		t.Fatalf("rpm --initdb: %v\n%s", err, out)
	}
	// The directories that other packages own on an rpm system (filesystem,
	// systemd, chkconfig, bash-completion, fish, zsh).
	for _, d := range []string{"etc/rc.d/init.d", "usr/lib/systemd/system", "usr/sbin", "usr/share/bash-completion/completions",
		"usr/share/fish/vendor_completions.d", "usr/share/licenses", "usr/share/man/man8", "usr/share/zsh/site-functions"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	before := tree(t, root)
	if out, err := rpm("-i", "--nodeps", rpmFile); err != nil {
		t.Fatalf("rpm -i: %v\n%s", err, out)
	}
	notStarted(t, root, "after install")
	if v := run(t, "chroot", root, "/usr/sbin/lvs-node", "version"); !versionLine.MatchString(v) {
		t.Errorf("lvs-node version in the root:\n%s", v)
	}
	writeIn(t, root, "var/lib/lvs-node/director.json", "{}\n")
	if out, err := rpm("-U", "--replacepkgs", "--nodeps", rpmFile); err != nil {
		t.Fatalf("rpm -U: %v\n%s", err, out)
	}
	notStarted(t, root, "after upgrade")
	if out, err := rpm("-e", "lvs-node"); err != nil {
		t.Fatalf("rpm -e: %v\n%s", err, out)
	}
	want := []string{"/var/lib/lvs-node/", "/var/lib/lvs-node/director.json"}
	if got := added(before, tree(t, root)); !slices.Equal(got, want) {
		t.Errorf("after rpm -e, left:\n%s\nwant the state only:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// versionLine is the first line of "lvs-node version" of a built package.
var versionLine = regexp.MustCompile(`^lvs-node \S+\ncommit: [0-9a-f]{7,}\ngo: go1\.`)
