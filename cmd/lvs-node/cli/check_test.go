package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(args, &o, &e)
	return code, o.String(), e.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckExamples(t *testing.T) {
	for _, ex := range []struct{ file, role string }{
		{"../../../examples/director.yaml", "director"},
		{"../../../examples/realserver.yaml", "realserver"},
	} {
		code, out, errOut := runCLI(t, "check", "--config", ex.file)
		if code != 0 || !strings.Contains(out, "valid "+ex.role+" configuration") {
			t.Errorf("check %s: code %d, stdout %q, stderr %q", ex.file, code, out, errOut)
		}
	}
}

func TestCheckReportsEveryErrorWithPosition(t *testing.T) {
	p := writeFile(t, "director.yaml", `director:
  resync_interval: soon
virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    scheduler: fastest
    real_servers:
      - {address: 10.0.0.11, port: 80, weight: 70000}
      - {address: 10.0.0.12, port: 80, wieght: 1}
`)
	code, out, errOut := runCLI(t, "check", "--config", p)
	if code != exitBadConfig || out != "" {
		t.Fatalf("code %d, stdout %q", code, out)
	}
	for _, want := range []string{
		p + ":2:20: director.resync_interval: want a duration",
		p + ":9:40: virtual_services[0].real_servers[0].weight:",
		p + `:10:40: virtual_services[0].real_servers[1].wieght: unknown key "wieght"`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestCheckValidationErrors(t *testing.T) {
	p := writeFile(t, "director.yaml", `virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    scheduler: fastest
    real_servers:
      - {address: 10.0.0.11, port: 8080}
`)
	code, _, errOut := runCLI(t, "check", "--config", p)
	if code != exitBadConfig {
		t.Fatalf("code %d for an invalid file", code)
	}
	for _, want := range []string{p + ":5:5: virtual_services[0].scheduler:", "wlc", p + ":7:"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestCheckRealserverErrors(t *testing.T) {
	p := writeFile(t, "rs.yaml", `realserver:
  bogus: 1
  vips:
    - {address: 10.0.0.100, mode: dr}
    - {address: 10.0.0.100, mode: tun}
`)
	code, _, errOut := runCLI(t, "check", "--config", p)
	// The unknown key and the validation problem are reported in one run.
	if code != exitBadConfig || !strings.Contains(errOut, p+":2:3: realserver.bogus: unknown key") || !strings.Contains(errOut, p+":5:") {
		t.Fatalf("code %d, stderr:\n%s", code, errOut)
	}
}

func TestCheckRoleDetection(t *testing.T) {
	both := writeFile(t, "both.yaml", "realserver: {}\nvirtual_services: []\n")
	if code, _, errOut := runCLI(t, "check", "--config", both); code == 0 || !strings.Contains(errOut, "one file per role") {
		t.Errorf("a file with both roles: code %d, %s", code, errOut)
	}
	neither := writeFile(t, "x.yaml", "listen: {metrics: 127.0.0.1:1}\n")
	if code, _, errOut := runCLI(t, "check", "--config", neither); code == 0 || !strings.Contains(errOut, "cannot tell the role") {
		t.Errorf("a file with no role: code %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "check"); code == 0 || !strings.Contains(errOut, "--config") {
		t.Errorf("no --config: code %d, %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "check", "--config", filepath.Join(t.TempDir(), "missing.yaml")); code == 0 {
		t.Error("a missing file passed")
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.Contains(out, "lvs-node ") || !strings.Contains(out, "go: go1.") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestCompletion(t *testing.T) {
	code, out, _ := runCLI(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "__start_lvs-node") {
		t.Fatalf("bash completion: code %d, %d bytes", code, len(out))
	}
}

func TestDetectRole(t *testing.T) {
	cases := []struct{ src, want string }{
		{"# comment\nrealserver:\n  vips: []\n", roleRealserver},
		{"director:\n  state_dir: /x\nvirtual_services: []\n", roleDirector},
		{"virtual_services:\n  - name: a\n    realserver: 1\n", roleDirector},
		{`"realserver": {}` + "\n", roleRealserver},
		{"{virtual_services: []}\n", roleDirector},
		{"{realserver: {}}\n", roleRealserver},
	}
	for _, c := range cases {
		got, err := detectRole("f.yaml", []byte(c.src))
		if err != nil || got != c.want {
			t.Errorf("detectRole(%q) = %q, %v; want %q", c.src, got, err, c.want)
		}
	}
}

// TestBadConfigSameExitEverywhere: a file that does not validate gives the
// same status from check and from each role's commands, before anything
// touches the kernel.
func TestBadConfigSameExitEverywhere(t *testing.T) {
	d := writeFile(t, "d.yaml", "virtual_services:\n  - {name: web, vip: 10.0.0.1, port: 80, weight: 7}\n")
	r := writeFile(t, "r.yaml", "realserver:\n  vips: [{address: 10.0.0.1, mode: nope}]\n")
	for _, args := range [][]string{
		{"check", "--config", d},
		{"check", "--config", r},
		{"director", "--once", "--config", d},
		{"director", "--dry-run", "--config", d},
		{"director", "down", "--config", d},
		{"director", "reload", "--config", d},
		{"realserver", "up", "--config", r},
		{"realserver", "down", "--config", r},
		{"realserver", "reload", "--config", r},
		{"realserver", "--config", r},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != exitBadConfig || !strings.Contains(errOut, ".yaml:2:") {
			t.Errorf("%v: code %d, stderr:\n%s", args, code, errOut)
		}
	}
}

// TestCheckAgainstTheKernel: on the target host (its files under
// --kernel-root) check refuses a scheduler the kernel cannot load and a
// tunnel type it would ignore; where the module index is missing it says
// it did not check instead of guessing.
func TestCheckAgainstTheKernel(t *testing.T) {
	root := t.TempDir()
	for p, body := range map[string]string{
		"proc/sys/kernel/osrelease":                    "5.2.0-test\n",
		"lib/modules/5.2.0-test/modules.dep":           "kernel/net/netfilter/ipvs/ip_vs_wlc.ko:\nkernel/net/netfilter/ipvs/ip_vs_rr.ko.xz:\n",
		"lib/modules/5.2.0-test/modules.builtin":       "",
		"other/proc/sys/kernel/osrelease":              "6.12.0-container\n",
		"other/lib/modules/6.1.0-18-amd64/modules.dep": "kernel/net/netfilter/ipvs/ip_vs_twos.ko:\n",
	} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := writeFile(t, "director.yaml", `virtual_services:
  - {name: a, vip: 10.0.0.1, port: 80, scheduler: twos}
  - name: b
    vip: 10.0.0.2
    port: 80
    forwarding: tun
    real_servers: [{address: 10.0.0.11, tunnel_type: gre}]
  - {name: c, vip: "2001:db8::1", port: 80, scheduler: rr, bind_vip: true}
`)
	code, out, errOut := runCLI(t, "check", "--config", p, "--kernel-root", root)
	if code != exitBadConfig {
		t.Fatalf("code %d, stdout %q", code, out)
	}
	for _, want := range []string{
		p + ":2:40: virtual_services[0].scheduler: scheduler twos cannot be used on this host: kernel 5.2.0-test has no module ip_vs_twos",
		p + ":7:41: virtual_services[1].real_servers[0].tunnel_type: this host runs Linux 5.2.0-test, which ignores tunnel_type gre",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	// A host that cannot tell: valid, with a summary that says so and the
	// note about the IPv6 VIP on lo.
	code, out, errOut = runCLI(t, "check", "--config", p, "--kernel-root", filepath.Join(root, "other"))
	if code != 0 || !strings.Contains(out, "schedulers not checked: kernel 6.12.0-container has no readable module index") ||
		!strings.Contains(out, "note: "+p+":8:60: virtual_services[2].bind_vip: IPv6 VIP 2001:db8::1 is bound on lo") {
		t.Errorf("check on a host without a module index: code %d\n%s%s", code, out, errOut)
	}
}
