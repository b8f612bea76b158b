package lab

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
