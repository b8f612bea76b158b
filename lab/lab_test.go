package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"
)

func TestVersionLess(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"6.1.0-9-amd64", "6.1.0-56-amd64", true},
		{"6.1.0-56-amd64", "6.1.0-9-amd64", false},
		{"5.10.0-30-amd64", "6.1.0-1-amd64", true},
		{"6.12.1-amd64", "6.2.0-amd64", false},
	}
	for _, c := range cases {
		if got := versionLess(c.a, c.b); got != c.want {
			t.Errorf("versionLess(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

func TestShellCommand(t *testing.T) {
	got := shellCommand([]string{"/lab/e2e.test", "-test.run=^TestA$", "it's"})
	want := `'/lab/e2e.test' '-test.run=^TestA$' 'it'\''s'`
	if got != want {
		t.Fatalf("shellCommand = %s, want %s", got, want)
	}
	out, err := exec.Command("sh", "-c", "printf '%s|' "+got).Output()
	if err != nil || string(out) != "/lab/e2e.test|-test.run=^TestA$|it's|" {
		t.Fatalf("sh parses it as %q, %v", out, err)
	}
}

func TestReadModulesDep(t *testing.T) {
	p := filepath.Join(t.TempDir(), "modules.dep")
	data := "kernel/net/a.ko: kernel/lib/b.ko kernel/lib/c.ko\nkernel/lib/b.ko:\nkernel/lib/c.ko: kernel/lib/b.ko\n"
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	deps, err := readModulesDep(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) != 3 || strings.Join(deps["kernel/net/a.ko"], ",") != "kernel/lib/b.ko,kernel/lib/c.ko" || len(deps["kernel/lib/b.ko"]) != 0 {
		t.Fatalf("deps = %v", deps)
	}
}

// TestInitramfsHasWhatTheLabNeeds packs a real initramfs from the host's
// kernel and reads it back.
func TestInitramfsHasWhatTheLabNeeds(t *testing.T) {
	if err := CheckHost(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	release, _, err := FindKernel("")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "initrd.cpio")
	cfg := Config{Files: map[string]string{"/lab/x.test": self}, Command: []string{"/lab/x.test", "-test.v"}, Env: map[string]string{"CI": "true"}}
	if err := buildInitramfs(dst, release, cfg); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := cpio.NewReader(f)
	files := map[string]string{}
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var body []byte
		if h.Mode.IsRegular() && h.Size < 4096 {
			body, _ = io.ReadAll(r)
		}
		files[h.Name] = string(body)
	}
	mod := "lib/modules/" + release + "/"
	for _, want := range []string{
		"init", "bin/busybox", "usr/sbin/ipvsadm", "sbin/ip", "lab/x.test", "lab/cmd", "lab/env",
		mod + "modules.dep", mod + "modules.alias",
		mod + "kernel/net/netfilter/ipvs/ip_vs.ko", mod + "kernel/net/netfilter/ipvs/ip_vs_mh.ko",
		mod + "kernel/net/ipv4/ipip.ko", mod + "kernel/net/ipv4/tunnel4.ko", mod + "kernel/net/ipv4/ip_tunnel.ko",
		mod + "kernel/lib/libcrc32c.ko", mod + "kernel/crypto/crc32c_generic.ko", mod + "kernel/net/bridge/bridge.ko",
		mod + "kernel/drivers/net/veth.ko", mod + "kernel/net/netfilter/nf_tables.ko",
	} {
		if _, ok := files[want]; !ok {
			t.Errorf("initramfs lacks %s", want)
		}
	}
	if !strings.Contains(files["lab/cmd"], "'/lab/x.test' '-test.v'") {
		t.Errorf("lab/cmd = %q", files["lab/cmd"])
	}
	if files["lab/env"] != "export CI='true'\n" {
		t.Errorf("lab/env = %q", files["lab/env"])
	}
	// ipvsadm is dynamically linked: its libraries and loader come along.
	var libnl bool
	for name := range files {
		if strings.Contains(name, "libnl-genl-3.so") {
			libnl = true
		}
	}
	if !libnl {
		t.Error("initramfs lacks ipvsadm's libnl-genl")
	}
	if _, ok := files["usr/sbin/keepalived"]; ok {
		t.Error("keepalived packed although not asked for")
	}
}

// TestSweepWorkDirs: the work directories of dead runs go, those of live
// ones and other files stay.
func TestSweepWorkDirs(t *testing.T) {
	base := t.TempDir()
	mine, err := makeWorkDir(base)
	if err != nil {
		t.Fatal(err)
	}
	// A process that has ended: its pid is free.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(base, workDirPattern+"gone")
	old := filepath.Join(base, workDirPattern+"old")
	young := filepath.Join(base, workDirPattern+"young")
	other := filepath.Join(base, "someone-else")
	for _, d := range []string{gone, old, young, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(gone, ownerFile), []byte(strconv.Itoa(dead.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	day := time.Now().Add(-25 * time.Hour)
	if err := os.Chtimes(old, day, day); err != nil {
		t.Fatal(err)
	}
	removed := sweepWorkDirs(base, time.Now())
	slices.Sort(removed)
	if want := []string{gone, old}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	for _, d := range []string{mine, young, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
}

// TestVMDiesWithItsParent: a process started as the VM is (boundToParent,
// on a locked thread) is killed when the process that started it is
// killed, as a test binary is on a timeout.
func TestVMDiesWithItsParent(t *testing.T) {
	if os.Getenv("LVS_LAB_ORPHAN_PARENT") == "1" {
		runtime.LockOSThread()
		cmd := exec.Command("sleep", "60")
		boundToParent(cmd)
		if err := cmd.Start(); err != nil {
			os.Exit(2)
		}
		os.Stdout.WriteString(strconv.Itoa(cmd.Process.Pid) + "\n")
		cmd.Wait()
		os.Exit(0)
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestVMDiesWithItsParent$")
	parent.Env = append(os.Environ(), "LVS_LAB_ORPHAN_PARENT=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	if !alive(child) {
		t.Fatalf("child %d not running", child)
	}
	parent.Process.Kill()
	parent.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for alive(child) && !zombie(child) {
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("child %d still running 5s after its parent was killed", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// zombie reports whether pid has exited and waits to be reaped (by init,
// once its parent is gone).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}
