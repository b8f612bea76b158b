package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// filePin pins by writing a file, and fails when told to.
type filePin struct {
	body string
	err  error
}

func (f filePin) Pin(path string) error {
	if f.err != nil {
		return f.err
	}
	return os.WriteFile(path, []byte(f.body), 0o600)
}

func TestReplacePin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "toa_addrs")
	if err := ReplacePin(filePin{body: "old"}, path); err != nil {
		t.Fatal(err)
	}
	if err := ReplacePin(filePin{body: "new"}, path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Fatalf("pinned %q, want new", b)
	}
	// A refused pin leaves the old one and no temporary behind.
	refused := errors.New("refused")
	if err := ReplacePin(filePin{err: refused}, path); !errors.Is(err, refused) {
		t.Fatalf("error %v, want refused", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Fatalf("after a refused pin %q, want new", b)
	}
	if _, err := os.Stat(path + "_new"); !os.IsNotExist(err) {
		t.Fatalf("temporary left: %v", err)
	}
}
