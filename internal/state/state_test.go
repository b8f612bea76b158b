package state

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "rec.json")
	var empty map[string]string
	found, err := Load(path, &empty)
	if err != nil || found {
		t.Fatalf("Load of missing file: found=%v err=%v", found, err)
	}
	want := map[string]string{"net/ipv4/conf/all/arp_ignore": "0"}
	if err := Save(path, want); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	found, err = Load(path, &got)
	if err != nil || !found || got["net/ipv4/conf/all/arp_ignore"] != "0" {
		t.Fatalf("Load = %v, %v, %v", got, found, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v; want 0600", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := Remove(path); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestLoadDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if _, err := Load(path, &v); err == nil {
		t.Fatal("damaged state file accepted")
	}
}
