//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.yaml.in/yaml/v3"

	"github.com/lvs-node/lvs-node/internal/ipvsadm"
	"github.com/lvs-node/lvs-node/lab/topo"
)

// samplesGuestDir is where the VM holds the importer's samples
// (director/importer/testdata).
const samplesGuestDir = "/lab/importer-testdata"

// addImporterSamples adds the importer's samples to the files the VM gets
// (host side).
func addImporterSamples(files map[string]string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("find module root: %w", err)
	}
	root := filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "director", "importer", "testdata")
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "fuzz" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files[filepath.Join(samplesGuestDir, rel)] = p
		return nil
	})
}

// sample is one line of the SAMPLES list.
type sample struct{ file, importer, options, original, note string }

func readSamples(t *testing.T) []sample {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesGuestDir, "SAMPLES"))
	if err != nil {
		t.Fatalf("the importer samples are not in the VM: %v", err)
	}
	var out []sample
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, " | ")
		if len(f) != 5 {
			t.Fatalf("SAMPLES: bad line %q", l)
		}
		out = append(out, sample{f[0], f[1], f[2], f[3], f[4]})
	}
	return out
}

// normalSave reads ipvsadm -Sn output and prints it back in ipvsadm's
// order, so that tables built in different orders compare equal.
func normalSave(t *testing.T, name, rules string) string {
	t.Helper()
	s, err := normalized(name, rules)
	if err != nil {
		t.Fatalf("%v\n%s", err, rules)
	}
	return s
}

func normalized(name, rules string) (string, error) {
	tab, err := ipvsadm.ParseSave(strings.NewReader(rules), name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	var b strings.Builder
	if err := ipvsadm.WriteSave(&b, tab); err != nil {
		return "", err
	}
	return b.String(), nil
}

// TestImportRoundTrip: for every importer sample, the original (run by
// keepalived, ipvsadm -R or the script with "start") and the imported
// director.yaml (run by "lvs-node director --once") program the same
// table, the one in FILE.want, and the same connection timeouts.
func TestImportRoundTrip(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/keepalived"); err != nil {
		t.Fatalf("keepalived is not in the VM (the e2e runner adds it for this test): %v", err)
	}
	modprobe(t, "ip_vs")
	for _, s := range readSamples(t) {
		t.Run(s.file, func(t *testing.T) { roundTrip(t, s) })
	}
}

func roundTrip(t *testing.T, s sample) {
	// The samples' directory, copied: includes and scripts are relative.
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(samplesGuestDir)); err != nil {
		t.Fatal(err)
	}
	wantB, err := os.ReadFile(filepath.Join(dir, s.file+".want"))
	if err != nil {
		t.Fatal(err)
	}
	want := normalSave(t, s.file+".want", string(wantB))

	l := topo.New(t)
	lan := l.Net("lan", "10.99.0.0/24")
	orig := l.Host("orig", topo.On(lan, "10.99.0.1/24", "fd99::1/64"))
	srv := l.Host("srv", topo.On(lan, "10.99.0.2/24", "fd99::2/64"))
	src, err := os.ReadFile(filepath.Join(dir, s.file))
	if err != nil {
		t.Fatal(err)
	}
	answer(t, srv, want, string(src))
	orig.MustRun(t, "/sbin/ip", "route", "add", "default", "via", "10.99.0.2")
	orig.MustRun(t, "/sbin/ip", "-6", "route", "add", "default", "via", "fd99::2")

	got := runOriginal(t, orig, dir, s, want)
	if got != want {
		t.Fatalf("the original never programmed the table of %s.want\n--- last table\n%s--- want\n%s", s.file, got, want)
	}

	// The import, programmed by the director in a fresh namespace.
	d := l.Host("dir", topo.On(lan, "10.99.0.3/24"))
	args := []string{"import", s.importer}
	if s.options != "-" {
		args = append(args, strings.Fields(s.options)...)
	}
	cmd := d.Command(context.Background(), "lvs-node", append(args, s.file)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	yml, err := cmd.Output()
	if err != nil {
		t.Fatalf("lvs-node import %s: %v\n%s", s.file, err, stderr.String())
	}
	cfg := filepath.Join(dir, "imported.yaml")
	if err := os.WriteFile(cfg, directorDoc(t, yml, filepath.Join(dir, "state")), 0o600); err != nil {
		t.Fatal(err)
	}
	d.MustRun(t, "lvs-node", "director", "--once", "--config", cfg)
	imported := normalSave(t, "imported", stdout(t, d, "", "ipvsadm", "-Sn"))
	if imported != got {
		t.Errorf("the import of %s programs another table than the original\n--- director --once\n%s--- original\n%s--- yaml\n%s",
			s.file, imported, got, yml)
	}
	// The connection timeouts too (ipvsadm --set, keepalived's lvs_timeouts).
	a, b := stdout(t, d, "", "ipvsadm", "-L", "--timeout"), stdout(t, orig, "", "ipvsadm", "-L", "--timeout")
	if a != b {
		t.Errorf("timeouts: director --once %q, original %q\n--- yaml\n%s", a, b, yml)
	}
	// The director's are exactly what the YAML says over the kernel's
	// defaults (a new namespace), so that the comparison above cannot
	// pass on timeouts neither side set.
	if want := wantTimeouts(t, yml); a != want {
		t.Errorf("timeouts: director --once %q, the yaml says %q\n--- yaml\n%s", a, want, yml)
	}
	t.Logf("timeouts: %s", strings.TrimSpace(a))
}

// wantTimeouts is "ipvsadm -L --timeout" in a new network namespace
// (900 120 300) after director.timeouts of the imported yml.
func wantTimeouts(t *testing.T, yml []byte) string {
	t.Helper()
	var doc struct {
		Director struct {
			Timeouts map[string]string `yaml:"timeouts"`
		} `yaml:"director"`
	}
	if err := yaml.Unmarshal(yml, &doc); err != nil {
		t.Fatal(err)
	}
	secs := []int64{900, 120, 300}
	for i, k := range []string{"tcp", "tcp_fin", "udp"} {
		v, ok := doc.Director.Timeouts[k]
		if !ok {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("director.timeouts.%s: %v", k, err)
		}
		secs[i] = int64(d / time.Second)
	}
	return fmt.Sprintf("Timeout (tcp tcpfin udp): %d %d %d\n", secs[0], secs[1], secs[2])
}

// runOriginal loads the original as SAMPLES says and returns its table
// once it equals want (or the last one seen, after 45 s): keepalived's
// checkers move servers in and out (alpha starts them down).
func runOriginal(t *testing.T, h *topo.Host, dir string, s sample, want string) string {
	t.Helper()
	f := strings.Fields(s.original)
	var stdin string
	if i := slices.Index(f, "<"); i >= 0 {
		b, err := os.ReadFile(filepath.Join(dir, f[i+1]))
		if err != nil {
			t.Fatal(err)
		}
		stdin, f = string(b), f[:i]
	}
	switch f[0] {
	case "keepalived":
		// Stubs for the scripts MISC_CHECK runs: they pass.
		stubMiscScripts(t, filepath.Join(dir, s.file))
		run := filepath.Join(dir, "run-"+s.file)
		args := append([]string{"-n", "-l", "-C", "-p", run + ".pid", "-c", run + ".checkers.pid", "-r", run + ".vrrp.pid"}, f[1:]...)
		ctx, cancel := context.WithCancel(context.Background())
		cmd := h.Command(ctx, "keepalived", args...)
		cmd.Dir = dir
		var out syncWriter
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			_ = cmd.Wait()
		})
		defer func() {
			if t.Failed() {
				t.Logf("keepalived:\n%s", out.String())
			}
		}()
	default:
		cmd := h.Command(context.Background(), f[0], f[1:]...)
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		t.Logf("%s: %v\n%s", s.original, err, out)
	}
	var got string
	deadline := time.Now().Add(45 * time.Second)
	for {
		// A dump taken while keepalived adds services may list one twice:
		// such a reading is not a table yet.
		raw := stdout(t, h, "", "ipvsadm", "-Sn")
		if n, err := normalized("original", raw); err == nil {
			got = n
		} else {
			got = raw
		}
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// directorDoc is the imported YAML ready for "director --once": state in
// stateDir, no endpoints, and without the keys this director does not read
// yet (health_check, sorry_server, quorum: they decide which servers are
// in over time, not the table of servers that pass their checks).
func directorDoc(t *testing.T, yml []byte, stateDir string) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(yml, &doc); err != nil {
		t.Fatalf("import is not YAML: %v\n%s", err, yml)
	}
	root := doc.Content[0]
	drop := func(m *yaml.Node, keys ...string) {
		kept := m.Content[:0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if !slices.Contains(keys, m.Content[i].Value) {
				kept = append(kept, m.Content[i], m.Content[i+1])
			}
		}
		m.Content = kept
	}
	drop(root, "listen")
	// The import's director block (timeouts) gets the state dir.
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "director" {
			d := root.Content[i+1]
			d.Style = 0
			d.Content = append(d.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "state_dir"}, &yaml.Node{Kind: yaml.ScalarNode, Value: stateDir})
			stateDir = ""
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "virtual_services" {
			continue
		}
		for _, vs := range root.Content[i+1].Content {
			drop(vs, "health_check", "sorry_server", "quorum")
			for j := 0; j+1 < len(vs.Content); j += 2 {
				if vs.Content[j].Value == "real_servers" {
					for _, rs := range vs.Content[j+1].Content {
						drop(rs, "health_check")
					}
				}
			}
		}
	}
	body, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	head := "listen: {control: \"\", metrics: \"\"}\n"
	if stateDir != "" {
		head = fmt.Sprintf("director: {state_dir: %s}\n", stateDir) + head
	}
	return append([]byte(head), body...)
}

// answer puts every real-server address of the table on srv's lo and
// answers HTTP 200 on every port they use and every connect_port of the
// original (config), so that keepalived's TCP and HTTP checks pass.
func answer(t *testing.T, srv *topo.Host, table, config string) {
	t.Helper()
	lo, err := srv.Handle().LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(` -r (\[[^\]]+\]|[0-9.]+):([0-9]+)`)
	addrs, ports := map[netip.Addr]bool{}, map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(table, -1) {
		a := netip.MustParseAddr(strings.Trim(m[1], "[]"))
		addrs[a] = true
		if m[2] != "0" {
			ports[m[2]] = true
		}
	}
	for _, m := range regexp.MustCompile(`connect_port\s+([0-9]+)`).FindAllStringSubmatch(config, -1) {
		ports[m[1]] = true
	}
	for a := range addrs {
		if err := srv.Handle().AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}}); err != nil {
			t.Fatalf("address %s on srv: %v", a, err)
		}
	}
	for p := range ports {
		ln, err := srv.Listen("tcp", "[::]:"+p)
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }),
			ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(ln)
		t.Cleanup(func() { hs.Close() })
	}
}

// stubMiscScripts writes a passing script for each MISC_CHECK misc_path
// of a keepalived file that does not exist in the VM.
func stubMiscScripts(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`misc_path\s+"?(/[^\s"]+)`).FindAllStringSubmatch(string(b), -1) {
		if _, err := os.Stat(m[1]); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(m[1]), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(m[1], []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(m[1]) })
	}
}

// syncWriter collects output written from several goroutines.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
