package sysctls

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeProc builds a /proc/sys-like tree under a temporary directory.
func fakeProc(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for k, v := range files {
		p := filepath.Join(root, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readFile(t *testing.T, root, key string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(key)))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

const (
	allIgnore = "net/ipv4/conf/all/arp_ignore"
	vlanIgn   = "net/ipv4/conf/eth0.100/arp_ignore"
	vlanAnn   = "net/ipv4/conf/eth0.100/arp_announce"
)

func TestSetRecordsOriginalAndRestores(t *testing.T) {
	root := fakeProc(t, map[string]string{allIgnore: "0", vlanIgn: "0", vlanAnn: "1"})
	stateFile := filepath.Join(t.TempDir(), "state", "sysctls.json")
	r, err := Open(stateFile, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Set(allIgnore, "1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(vlanIgn, "1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(vlanAnn, "2"); err != nil {
		t.Fatal(err)
	}
	// A second change of the same key keeps the first original.
	if err := r.Set(vlanAnn, "0"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, root, vlanIgn); got != "1" {
		t.Fatalf("%s = %q, want 1 (the dot must not become a slash)", vlanIgn, got)
	}
	if _, err := os.Stat(filepath.Join(root, "net/ipv4/conf/eth0/100/arp_ignore")); err == nil {
		t.Fatal("dotted interface name was split into directories")
	}
	want := map[string]string{allIgnore: "0", vlanIgn: "0", vlanAnn: "1"}
	if got := r.Originals(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Originals = %v, want %v", got, want)
	}
	// A new Recorder (a later run) sees the same originals.
	r2, err := Open(stateFile, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.Originals(); !reflect.DeepEqual(got, want) {
		t.Fatalf("reloaded Originals = %v, want %v", got, want)
	}
	if err := r2.Restore(); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if got := readFile(t, root, k); got != v {
			t.Errorf("after Restore %s = %q, want %q", k, got, v)
		}
	}
	if len(r2.Originals()) != 0 {
		t.Errorf("record not cleared: %v", r2.Originals())
	}
	if _, err := os.Stat(stateFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state file still present after Restore: %v", err)
	}
	// Restore with nothing recorded is a no-op.
	if err := r2.Restore(); err != nil {
		t.Fatal(err)
	}
}

func TestApplyUnchangedIsNotRecorded(t *testing.T) {
	root := fakeProc(t, map[string]string{allIgnore: "1", "net/ipv4/ip_local_port_range": "32768\t60999"})
	stateFile := filepath.Join(t.TempDir(), "sysctls.json")
	r, err := Open(stateFile, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{allIgnore, "1"}, {"net/ipv4/ip_local_port_range", "32768 60999"}} {
		changed, err := r.Apply(kv[0], kv[1])
		if err != nil {
			t.Fatal(err)
		}
		if changed {
			t.Errorf("Apply(%s, %q) reported a change for an equal value", kv[0], kv[1])
		}
	}
	if len(r.Originals()) != 0 {
		t.Fatalf("unchanged keys recorded: %v", r.Originals())
	}
	if _, err := os.Stat(stateFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("state file written although nothing changed: %v", err)
	}
	changed, err := r.Apply(allIgnore, "2")
	if err != nil || !changed {
		t.Fatalf("Apply = %v, %v; want a change", changed, err)
	}
	changed, err = r.Apply(allIgnore, "2")
	if err != nil || changed {
		t.Fatalf("second Apply = %v, %v; want no change", changed, err)
	}
}

func TestOriginalPersistedBeforeWrite(t *testing.T) {
	root := fakeProc(t, map[string]string{allIgnore: "0"})
	dir := filepath.Join(t.TempDir(), "state")
	r, err := Open(filepath.Join(dir, "sysctls.json"), WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	// The state directory cannot be created now (a file stands in its
	// place): the record fails, so the kernel value must stay untouched.
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(allIgnore, "1"); err == nil {
		t.Fatal("Set succeeded although the original could not be recorded")
	}
	if got := readFile(t, root, allIgnore); got != "0" {
		t.Fatalf("value changed to %q without a recorded original", got)
	}
}

func TestBadKeys(t *testing.T) {
	root := fakeProc(t, map[string]string{allIgnore: "0"})
	r, err := Open(filepath.Join(t.TempDir(), "s.json"), WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"", "/proc/sys/net/ipv4/conf/all/arp_ignore", "../etc/passwd", "net/../../x",
		"net/ipv4/conf/all/", "net.ipv4.conf.all.arp_ignore", "net//ipv4"} {
		if err := r.Set(k, "1"); !errors.Is(err, ErrBadKey) {
			t.Errorf("Set(%q) = %v, want ErrBadKey", k, err)
		}
	}
	if _, err := r.Get("net/ipv4/conf/nosuchdev/arp_ignore"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get of a missing device = %v, want ErrNotExist", err)
	}
}

func TestRestoreSkipsVanishedKeysAndKeepsFailures(t *testing.T) {
	root := fakeProc(t, map[string]string{allIgnore: "0", vlanIgn: "0"})
	stateFile := filepath.Join(t.TempDir(), "s.json")
	r, err := Open(stateFile, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Set(allIgnore, "1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(vlanIgn, "1"); err != nil {
		t.Fatal(err)
	}
	// The interface disappears: nothing to restore for it.
	if err := os.RemoveAll(filepath.Join(root, "net/ipv4/conf/eth0.100")); err != nil {
		t.Fatal(err)
	}
	if err := r.Restore(); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got := readFile(t, root, allIgnore); got != "0" {
		t.Fatalf("all/arp_ignore = %q after Restore", got)
	}
}

func TestDamagedStateFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.json")
	if err := os.WriteFile(p, []byte(`{"originals":[{"key":"../x","original":"1"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p); !errors.Is(err, ErrBadKey) {
		t.Fatalf("Open with a bad key in the record = %v", err)
	}
	if err := os.WriteFile(p, []byte(`{`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p); err == nil {
		t.Fatal("damaged state accepted")
	}
}

func TestRestoreKeys(t *testing.T) {
	root := fakeProc(t, map[string]string{allIgnore: "0", vlanIgn: "0", vlanAnn: "0"})
	r, err := Open(filepath.Join(t.TempDir(), "s.json"), WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{allIgnore, vlanIgn, vlanAnn} {
		if err := r.Set(k, "2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.RestoreKeys(vlanIgn, "net/ipv4/conf/never/changed"); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, k := range []string{allIgnore, vlanIgn, vlanAnn} {
		got[k] = readFile(t, root, k)
	}
	want := map[string]string{allIgnore: "2", vlanIgn: "0", vlanAnn: "2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after RestoreKeys: %v, want %v", got, want)
	}
	if o := r.Originals(); len(o) != 2 || o[vlanIgn] != "" {
		t.Fatalf("Originals after RestoreKeys = %v", o)
	}
}
