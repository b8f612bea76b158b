package packaging_test

import (
	"debug/buildinfo"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/lvs-node/lvs-node/cmd/lvs-node/cli"
)

// manPages names the page of every command, as cobra's doc generator
// writes them: one per available command, help excluded.
func manPages() []string {
	var pages []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
			return
		}
		pages = append(pages, "/usr/share/man/man8/"+strings.ReplaceAll(c.CommandPath(), " ", "-")+".8.gz")
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := cli.Command(io.Discard, io.Discard)
	walk(root)
	return pages
}

// debFiles are the files of the .deb with their modes.
func debFiles() map[string]string {
	files := map[string]string{
		"/usr/sbin/lvs-node":                                 "-rwxr-xr-x",
		"/lib/systemd/system/lvs-node-director.service":      "-rw-r--r--",
		"/lib/systemd/system/lvs-node-realserver.service":    "-rw-r--r--",
		"/etc/init.d/lvs-node-director":                      "-rwxr-xr-x",
		"/etc/init.d/lvs-node-realserver":                    "-rwxr-xr-x",
		"/usr/share/lvs-node/init-functions":                 "-rw-r--r--",
		"/usr/share/lvs-node/maintainer-functions":           "-rw-r--r--",
		"/etc/lvs-node/director.yaml":                        "-rw-r-----",
		"/etc/lvs-node/realserver.yaml":                      "-rw-r-----",
		"/usr/share/bash-completion/completions/lvs-node":    "-rw-r--r--",
		"/usr/share/zsh/vendor-completions/_lvs-node":        "-rw-r--r--",
		"/usr/share/fish/vendor_completions.d/lvs-node.fish": "-rw-r--r--",
		"/usr/share/lvs-node/grafana/lvs-node.json":          "-rw-r--r--",
		"/usr/share/lvs-node/prometheus/lvs-node.rules.yml":  "-rw-r--r--",
		"/usr/share/doc/lvs-node/copyright":                  "-rw-r--r--",
		"/usr/share/doc/lvs-node/changelog.Debian.gz":        "-rw-r--r--",
		"/usr/share/lintian/overrides/lvs-node":              "-rw-r--r--",
	}
	for _, p := range manPages() {
		files[p] = "-rw-r--r--"
	}
	return files
}

// rpmFiles are the files of the .rpm: the .deb's at the places rpm
// systems use, without Debian's changelog and lintian files.
func rpmFiles() map[string]string {
	moved := strings.NewReplacer(
		"/lib/systemd/", "/usr/lib/systemd/",
		"/etc/init.d/", "/etc/rc.d/init.d/",
		"/usr/share/zsh/vendor-completions/", "/usr/share/zsh/site-functions/",
		"/usr/share/doc/lvs-node/copyright", "/usr/share/licenses/lvs-node/copyright",
	)
	files := map[string]string{}
	for p, mode := range debFiles() {
		if strings.Contains(p, "changelog.Debian") || strings.Contains(p, "/lintian/") {
			continue
		}
		files[moved.Replace(p)] = mode
	}
	return files
}

func TestDebContents(t *testing.T) {
	need(t, "dpkg-deb")
	deb, _ := built(t, "amd64")
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || strings.HasPrefix(f[0], "d") {
			continue
		}
		got[strings.TrimPrefix(f[5], ".")] = f[0]
		if f[1] != "root/root" && f[1] != "0/0" {
			t.Errorf("%s is owned by %s, want root/root", f[5], f[1])
		}
	}
	compareFiles(t, "dpkg-deb -c", got, debFiles())

	conf := strings.Fields(run(t, "dpkg-deb", "-I", deb, "conffiles"))
	slices.Sort(conf)
	want := []string{"/etc/init.d/lvs-node-director", "/etc/init.d/lvs-node-realserver", "/etc/lvs-node/director.yaml", "/etc/lvs-node/realserver.yaml"}
	if !slices.Equal(conf, want) {
		t.Errorf("conffiles %v, want %v", conf, want)
	}
	fields := run(t, "dpkg-deb", "-f", deb, "Package", "Architecture", "Depends")
	if fields != "Package: lvs-node\nArchitecture: amd64\n" {
		t.Errorf("control fields:\n%s", fields)
	}
	// The maintainer scripts are packaging/scripts/deb-*.
	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, ctl)
	for name, src := range map[string]string{"postinst": "deb-postinst", "prerm": "deb-prerm", "postrm": "deb-postrm"} {
		sameFile(t, filepath.Join(ctl, name), filepath.Join(repoRoot(t), "packaging", "scripts", src))
	}
	if _, err := os.Stat(filepath.Join(ctl, "preinst")); err == nil {
		t.Error("the .deb has a preinst; none was written")
	}
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)
	staticELF(t, filepath.Join(root, "usr/sbin/lvs-node"), elf.EM_X86_64)
	for _, role := range []string{"director", "realserver"} {
		sameFile(t, filepath.Join(root, "etc/lvs-node", role+".yaml"), filepath.Join(repoRoot(t), "examples", role+".yaml"))
		sameFile(t, filepath.Join(root, "lib/systemd/system/lvs-node-"+role+".service"), filepath.Join(repoRoot(t), "packaging/systemd/lvs-node-"+role+".service"))
	}
}

func TestRPMContents(t *testing.T) {
	need(t, "rpm")
	_, rpm := built(t, "amd64")
	got := map[string]string{}
	flags := map[string]string{}
	out := run(t, "rpm", "-qp", "--qf", `[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags}. %{FILENAMES}\n]`, rpm)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("rpm -qp line %q", line)
		}
		if f[1] != "root:root" {
			t.Errorf("%s is owned by %s", f[3], f[1])
		}
		if strings.HasPrefix(f[0], "d") {
			got[f[3]+"/"] = f[0]
			continue
		}
		got[f[3]] = f[0]
		flags[f[3]] = strings.TrimSuffix(f[2], ".")
	}
	want := rpmFiles()
	// The directories that are lvs-node's alone are owned by it.
	for _, d := range []string{"/etc/lvs-node/", "/usr/share/lvs-node/", "/usr/share/lvs-node/grafana/", "/usr/share/lvs-node/prometheus/", "/usr/share/licenses/lvs-node/"} {
		want[d] = "drwxr-xr-x"
	}
	compareFiles(t, "rpm -qp", got, want)
	// rpm -qpl lists the same.
	list := strings.Fields(run(t, "rpm", "-qpl", rpm))
	if len(list) != len(want) {
		t.Errorf("rpm -qpl lists %d paths, want %d", len(list), len(want))
	}
	for _, p := range []string{"/etc/lvs-node/director.yaml", "/etc/lvs-node/realserver.yaml", "/etc/rc.d/init.d/lvs-node-director", "/etc/rc.d/init.d/lvs-node-realserver"} {
		if flags[p] != "cn" {
			t.Errorf("%s has flags %q, want cn: %%config(noreplace)", p, flags[p])
		}
	}
	if flags["/usr/share/licenses/lvs-node/copyright"] != "l" {
		t.Errorf("copyright is not %%license: %q", flags["/usr/share/licenses/lvs-node/copyright"])
	}
	if arch := run(t, "rpm", "-qp", "--qf", "%{NAME} %{ARCH}", rpm); arch != "lvs-node x86_64" {
		t.Errorf("name and arch %q", arch)
	}
	scripts := run(t, "rpm", "-qp", "--scripts", rpm)
	for _, src := range []string{"rpm-post", "rpm-preun", "rpm-postun"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", "scripts", src))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(scripts, strings.TrimSpace(string(b))) {
			t.Errorf("rpm --scripts lacks packaging/scripts/%s:\n%s", src, scripts)
		}
	}
	if !strings.Contains(run(t, "rpm", "-qp", "--changelog", rpm), "First packaged release") {
		t.Error("the rpm has no changelog from packaging/changelog.yml")
	}
}

// The arm64 packages carry an arm64 binary. make packages runs this on
// what it built; make test builds amd64 only, to stay quick.
func TestArm64Packages(t *testing.T) {
	if os.Getenv("LVS_PACKAGES_DIR") == "" {
		t.Skip("checks the arm64 packages of make packages (LVS_PACKAGES_DIR)")
	}
	need(t, "dpkg-deb", "rpm")
	deb, rpm := built(t, "arm64")
	if got := run(t, "dpkg-deb", "-f", deb, "Architecture"); got != "arm64\n" {
		t.Errorf("deb architecture %q", got)
	}
	if got := run(t, "rpm", "-qp", "--qf", "%{ARCH}", rpm); got != "aarch64" {
		t.Errorf("rpm architecture %q", got)
	}
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)
	staticELF(t, filepath.Join(root, "usr/sbin/lvs-node"), elf.EM_AARCH64)
}

func compareFiles(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for p, mode := range want {
		switch g, ok := got[p]; {
		case !ok:
			t.Errorf("%s: %s is missing", what, p)
		case g != mode:
			t.Errorf("%s: %s has mode %s, want %s", what, p, g, mode)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected %s", what, p)
		}
	}
}

func sameFile(t *testing.T, got, want string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Errorf("%s differs from %s", got, want)
	}
}

// staticELF checks that path is a static executable for machine.
func staticELF(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Errorf("%s is for %v, want %v", path, f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked", path)
		}
	}
	if _, err := exec.LookPath("file"); err == nil {
		t.Logf("%s", run(t, "file", path))
	}
}

// The copyright file names every Go module linked into the binary.
func TestCopyrightNamesEveryModule(t *testing.T) {
	need(t, "dpkg-deb")
	deb, _ := built(t, "amd64")
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)
	bi, err := buildinfo.ReadFile(filepath.Join(root, "usr/sbin/lvs-node"))
	if err != nil {
		t.Fatal(err)
	}
	copyright, err := os.ReadFile(filepath.Join(root, "usr/share/doc/lvs-node/copyright"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(copyright), "\n") {
		f := strings.Fields(strings.TrimPrefix(line, "Files:"))
		if len(f) == 1 && (strings.HasPrefix(line, "Files:") || strings.HasPrefix(line, " ")) {
			listed[f[0]] = true
		}
	}
	if len(bi.Deps) == 0 {
		t.Fatal("the binary carries no module list")
	}
	for _, dep := range bi.Deps {
		if !listed[dep.Path] {
			t.Errorf("packaging/copyright does not list %s %s, which the binary links", dep.Path, dep.Version)
		}
	}
}
