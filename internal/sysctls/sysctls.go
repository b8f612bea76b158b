package sysctls

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	sysctl "github.com/lorenzosaino/go-sysctl"

	"github.com/lvs-node/lvs-node/internal/state"
)

// DefaultRoot is where the kernel exposes its parameters.
const DefaultRoot = "/proc/sys"

// ErrBadKey is returned for a key that is not a clean relative path under
// the sysctl root.
var ErrBadKey = errors.New("bad sysctl key")

// Recorder reads and changes sysctls, recording the original value of every
// key it changes in a state file. It is safe for concurrent use.
type Recorder struct {
	root      string
	stateFile string

	mu      sync.Mutex
	entries []entry // in the order of the first change
}

// entry is one recorded original, as stored in the state file.
type entry struct {
	Key      string `json:"key"`
	Original string `json:"original"`
}

// record is the layout of the state file.
type record struct {
	Originals []entry `json:"originals"`
}

// Option adjusts a Recorder.
type Option func(*Recorder)

// WithRoot makes the Recorder read and write under root instead of
// /proc/sys (tests point it at a temporary directory).
func WithRoot(root string) Option {
	return func(r *Recorder) { r.root = root }
}

// Open returns a Recorder that keeps its record in stateFile, loading the
// originals recorded there by an earlier run. A missing file means nothing
// was changed yet.
func Open(stateFile string, opts ...Option) (*Recorder, error) {
	r := &Recorder{root: DefaultRoot, stateFile: stateFile}
	for _, o := range opts {
		o(r)
	}
	var rec record
	if _, err := state.Load(stateFile, &rec); err != nil {
		return nil, fmt.Errorf("load sysctl originals: %w", err)
	}
	seen := map[string]bool{}
	for _, e := range rec.Originals {
		if err := checkKey(e.Key); err != nil {
			return nil, fmt.Errorf("state file %s: %w", stateFile, err)
		}
		if seen[e.Key] {
			continue
		}
		seen[e.Key] = true
		r.entries = append(r.entries, e)
	}
	return r, nil
}

// Root returns the directory the Recorder reads and writes under.
func (r *Recorder) Root() string { return r.root }

// StateFile returns the path of the record of originals.
func (r *Recorder) StateFile() string { return r.stateFile }

func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key || key == "." ||
		strings.HasPrefix(key, "../") || key == ".." {
		return fmt.Errorf("%w %q: want a path relative to /proc/sys such as net/ipv4/conf/all/arp_ignore", ErrBadKey, key)
	}
	if strings.Contains(path.Base(key), ".") {
		return fmt.Errorf("%w %q: the last element must not contain a dot", ErrBadKey, key)
	}
	return nil
}

// client returns a go-sysctl client rooted at the directory of key and the
// base name to pass to it.
func (r *Recorder) client(key string) (*sysctl.Client, string, error) {
	if err := checkKey(key); err != nil {
		return nil, "", err
	}
	dir, base := path.Split(key)
	dirPath := filepath.Join(r.root, filepath.FromSlash(dir))
	c, err := sysctl.NewClient(dirPath)
	if err != nil {
		if _, serr := os.Stat(dirPath); serr != nil {
			return nil, "", fmt.Errorf("sysctl %s: %w", key, serr)
		}
		return nil, "", fmt.Errorf("sysctl %s: %w", key, err)
	}
	return c, base, nil
}

// Get returns the current value of key, with surrounding white space
// removed.
func (r *Recorder) Get(key string) (string, error) {
	c, base, err := r.client(key)
	if err != nil {
		return "", err
	}
	v, err := c.Get(base)
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", key, err)
	}
	return v, nil
}

// List returns the names in the sysctl directory dir (for example
// net/ipv6/conf: all, default and one per interface), sorted.
func (r *Recorder) List(dir string) ([]string, error) {
	if err := checkKey(dir); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(r.root, filepath.FromSlash(dir)))
	if err != nil {
		return nil, fmt.Errorf("list sysctls %s: %w", dir, err)
	}
	out := make([]string, len(ents))
	for i, e := range ents {
		out[i] = e.Name()
	}
	return out, nil
}

// Equal reports whether two sysctl values are the same once runs of white
// space are ignored ("32768\t60999" equals "32768 60999").
func Equal(a, b string) bool {
	return strings.Join(strings.Fields(a), " ") == strings.Join(strings.Fields(b), " ")
}

// Set makes key hold value. See Apply.
func (r *Recorder) Set(key, value string) error {
	_, err := r.Apply(key, value)
	return err
}

// Apply makes key hold value and reports whether it had to change it. On
// the first change of a key its current value is recorded, and the record
// is saved to the state file before the kernel is touched.
func (r *Recorder) Apply(key, value string) (changed bool, err error) {
	c, base, err := r.client(key)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, err := c.Get(base)
	if err != nil {
		return false, fmt.Errorf("read sysctl %s: %w", key, err)
	}
	if Equal(cur, value) {
		return false, nil
	}
	if r.index(key) < 0 {
		entries := append(append([]entry(nil), r.entries...), entry{Key: key, Original: cur})
		if err := state.Save(r.stateFile, record{Originals: entries}); err != nil {
			return false, fmt.Errorf("record original of sysctl %s: %w", key, err)
		}
		r.entries = entries
	}
	if err := c.Set(base, value); err != nil {
		return false, fmt.Errorf("write sysctl %s=%s: %w", key, value, err)
	}
	return true, nil
}

func (r *Recorder) index(key string) int {
	for i, e := range r.entries {
		if e.Key == key {
			return i
		}
	}
	return -1
}

// Originals returns the recorded original of every key changed so far.
func (r *Recorder) Originals() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.entries))
	for _, e := range r.entries {
		out[e.Key] = e.Original
	}
	return out
}

// Restore writes every recorded original back, the most recent change
// first, and clears the record. A key that no longer exists (its interface
// was removed) needs no restoring. Keys that could not be written stay
// recorded and are reported together.
func (r *Recorder) Restore() error {
	return r.restore(func(string) bool { return true })
}

// RestoreKeys is Restore for the given keys only; other records stay.
func (r *Recorder) RestoreKeys(keys ...string) error {
	return r.restore(func(k string) bool { return slices.Contains(keys, k) })
}

func (r *Recorder) restore(match func(string) bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	var kept []entry
	for i := len(r.entries) - 1; i >= 0; i-- {
		e := r.entries[i]
		if !match(e.Key) {
			kept = append([]entry{e}, kept...)
			continue
		}
		if err := r.restoreOne(e); err != nil {
			errs = append(errs, err)
			kept = append([]entry{e}, kept...)
		}
	}
	if len(kept) == len(r.entries) && len(errs) == 0 && len(kept) > 0 {
		return nil
	}
	r.entries = kept
	if len(kept) == 0 {
		if err := state.Remove(r.stateFile); err != nil {
			errs = append(errs, err)
		}
	} else if err := state.Save(r.stateFile, record{Originals: kept}); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (r *Recorder) restoreOne(e entry) error {
	c, base, err := r.client(e.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	cur, err := c.Get(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read sysctl %s: %w", e.Key, err)
	}
	if Equal(cur, e.Original) {
		return nil
	}
	if err := c.Set(base, e.Original); err != nil {
		return fmt.Errorf("restore sysctl %s=%s: %w", e.Key, e.Original, err)
	}
	return nil
}
