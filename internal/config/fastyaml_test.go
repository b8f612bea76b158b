package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// referenceParse parses data as Decode does without the fast parser: the
// document node, or ok false when yaml/v3 refuses it, finds it empty or
// finds a second document.
func referenceParse(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return &root, true
}

// sameTree compares two node trees on everything but comments and
// returns the first difference.
func sameTree(path string, a, b *yaml.Node) string {
	if a == nil || b == nil {
		if a != b {
			return fmt.Sprintf("%s: one node is nil", path)
		}
		return ""
	}
	if a.Kind != b.Kind || a.Style != b.Style || a.Tag != b.Tag || a.Value != b.Value || a.Anchor != b.Anchor ||
		a.Line != b.Line || a.Column != b.Column || len(a.Content) != len(b.Content) || (a.Alias == nil) != (b.Alias == nil) {
		return fmt.Sprintf("%s: fast {kind %d style %d tag %q value %q at %d:%d, %d children} != yaml/v3 {kind %d style %d tag %q value %q at %d:%d, %d children}",
			path, a.Kind, a.Style, a.Tag, a.Value, a.Line, a.Column, len(a.Content), b.Kind, b.Style, b.Tag, b.Value, b.Line, b.Column, len(b.Content))
	}
	for i := range a.Content {
		if d := sameTree(fmt.Sprintf("%s/%d", path, i), a.Content[i], b.Content[i]); d != "" {
			return d
		}
	}
	return ""
}

// checkFast holds the fast parser to yaml/v3 on data: whenever it accepts
// the input, yaml/v3 must too, with the same tree. It returns whether the
// fast parser accepted it.
func checkFast(t testing.TB, data []byte) bool {
	t.Helper()
	got, ok := fastParse(string(data))
	if !ok {
		return false
	}
	want, wok := referenceParse(data)
	if !wok {
		t.Fatalf("the fast parser accepted what yaml/v3 refuses:\n%s", data)
	}
	if d := sameTree("", got.toYAML(0), want); d != "" {
		t.Fatalf("%s\ninput:\n%s", d, data)
	}
	// The conversion yaml/v3's documents go through keeps them whole.
	if d := sameTree("", fromYAML(want).toYAML(0), want); d != "" {
		t.Fatalf("%s\ninput:\n%s", d, data)
	}
	return true
}

// fastCases are inputs the fast parser must accept (true) or leave to
// yaml/v3 (false).
var fastCases = []struct {
	in   string
	fast bool
}{
	{"a: 1\n", true},
	{"a: 1", true},
	{"# head\na: 1 # tail\n\n# foot\n", true},
	{"a:\n  b: c\n  d: [1, 2, 'x''y', \"z\"]\n", true},
	{"a:\n- 1\n- {x: 2001:db8::1, y: -1}\nb: ::1\n", true},
	{"a: {y: ::1}\n", false},
	{"- name: s1\n  vip: 10.0.0.1\n  real_servers:\n    - {address: 10.0.0.2, port: 80, weight: 100}\n- name: s2\n  port: 80\n", true},
	{"-   a: 1\n    b: 2\n-  x\n", true},
	{"a: {}\nb: []\nc: ~\nd: null\ne: true\nf: 0x1F\ng: 1_000\nh: 2001-12-14\ni: .5\nj: <<\nk: 1e3\nl: -3\nm: +4\n", true},
	{"a: 'it''s'\nb: \"\"\nc: ''\n", true},
	{"a: x#y\nb: x # y\nc: a,b\nd: [a b, c d ]\n", true},
	{"key : value\n", true},
	{"a: {b: {c: [d, [e]]}}\n", true},
	{"a: b\n   # an indented comment\nc: d\n", true},

	{"", false},
	{"# only a comment\n", false},
	{"---\na: 1\n", false},
	{"a: 1\n---\nb: 2\n", false},
	{"a: &x 1\nb: *x\n", false},
	{"a: !!str 1\n", false},
	{"a: |\n  text\n", false},
	{"a: >\n  text\n", false},
	{"a: multi\n  line\n", false},
	{"a:\n", false},
	{"a:\nb: 1\n", false},
	{"-\n  a: 1\n", false},
	{"- - a\n", false},
	{"a: \"esc\\n\"\n", false},
	{"a: 'two\n  lines'\n", false},
	{"a: [1,\n  2]\n", false},
	{"a: [1, 2,]\n", false},
	{"a:\tb\n", false},
	{"a: b\r\n", false},
	{"  a: 1\n", false},
	{"a: b: c\n", false},
	{"a: é\n", false},
	{"\"a\": 1\n", false},
	{"? a\n: 1\n", false},
	{"a: 1\n b: 2\n", false},
	{"a:\n  b: 1\n c: 2\n", false},
	{"scalar\n", false},
	{"a: {b}\n", false},
	{"a: [b: c]\n", false},
	{"a: @x\n", false},
	{"a: -x\n", true},
	{"a: - x\n", false},
}

func TestFastParseMatchesYAML(t *testing.T) {
	for _, c := range fastCases {
		if got := checkFast(t, []byte(c.in)); got != c.fast {
			t.Errorf("fast parser took %q: %v, want %v", c.in, got, c.fast)
		}
	}
	if !checkFast(t, bigConfig(200)) {
		t.Error("the fast parser left a generated configuration to yaml/v3")
	}
}

// TestFastParseRepositoryFiles holds the fast parser to yaml/v3 on every
// YAML file of the repository.
func TestFastParseRepositoryFiles(t *testing.T) {
	var files []string
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fast := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if checkFast(t, data) {
			fast++
		}
	}
	t.Logf("%d of %d YAML files parsed by the fast parser", fast, len(files))
}

func FuzzFastParse(f *testing.F) {
	for _, c := range fastCases {
		f.Add([]byte(c.in))
	}
	f.Add(bigConfig(3))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFast(t, data)
	})
}
