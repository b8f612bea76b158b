package ipvs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Availability is what the running kernel's files say of a module.
type Availability int

const (
	// Unknown: nothing to tell from (no /lib/modules for the running
	// kernel, as in many containers). Say nothing rather than guess.
	Unknown Availability = iota
	// Available: loaded, built in, or installed for the running kernel.
	Available
	// Unavailable: the running kernel's module index does not list it.
	Unavailable
)

// KernelFiles reads what the running kernel can do from its files:
// /proc/sys/kernel/osrelease, /sys/module and /lib/modules/RELEASE
// (modules.dep, modules.builtin). Root is "/" on a host; tests point it at
// a fixture. It is safe for concurrent use; the module index is read once.
type KernelFiles struct {
	Root string

	once      sync.Once
	release   string
	relErr    error
	installed map[string]bool // from modules.dep; nil when it cannot be read
	builtin   map[string]bool
	index     string // the modules.dep read, for messages
}

// NewKernelFiles returns a KernelFiles rooted at root.
func NewKernelFiles(root string) *KernelFiles { return &KernelFiles{Root: root} }

func (k *KernelFiles) path(p string) string { return filepath.Join(k.Root, filepath.FromSlash(p)) }

func (k *KernelFiles) load() {
	k.once.Do(func() {
		b, err := os.ReadFile(k.path("/proc/sys/kernel/osrelease"))
		if err != nil {
			k.relErr = fmt.Errorf("kernel release: %w", err)
			return
		}
		k.release = strings.TrimSpace(string(b))
		dir := "/lib/modules/" + k.release
		k.index = dir + "/modules.dep"
		if m, err := moduleNames(k.path(k.index), true); err == nil {
			k.installed = m
		}
		if m, err := moduleNames(k.path(dir+"/modules.builtin"), false); err == nil {
			k.builtin = m
		}
	})
}

// Release returns the running kernel's release (uname -r).
func (k *KernelFiles) Release() (string, error) {
	k.load()
	return k.release, k.relErr
}

// Index returns the path of the module index of the running kernel and
// whether it could be read: without it, Module answers Unknown for every
// module that is not loaded.
func (k *KernelFiles) Index() (string, bool) {
	k.load()
	return k.index, k.installed != nil
}

// Module says whether the running kernel can load the module name (such
// as ip_vs_twos), and why: it is loaded (/sys/module), built in
// (modules.builtin) or installed (modules.dep); otherwise it is
// Unavailable, unless the module index cannot be read (Unknown).
func (k *KernelFiles) Module(name string) (Availability, string) {
	name = modName(name)
	if _, err := os.Stat(k.path("/sys/module/" + name)); err == nil {
		return Available, "loaded"
	}
	k.load()
	switch {
	case k.builtin[name]:
		return Available, "built into the kernel"
	case k.installed[name]:
		return Available, "in " + k.index
	case k.installed == nil:
		if k.relErr != nil {
			return Unknown, k.relErr.Error()
		}
		return Unknown, "no module index for kernel " + k.release + " (" + k.index + " cannot be read)"
	}
	return Unavailable, fmt.Sprintf("kernel %s has no module %s (not loaded, not built in, not in %s)", k.release, name, k.index)
}

// moduleNames reads the module names of modules.dep ("kernel/net/.../
// ip_vs_wlc.ko.xz: deps") or modules.builtin (one path a line).
func moduleNames(file string, dep bool) (map[string]bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if dep {
			p, _, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			line = p
		}
		base := path.Base(strings.TrimSpace(line))
		if i := strings.Index(base, ".ko"); i > 0 {
			out[modName(base[:i])] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// modName is a module's name as the kernel spells it: modprobe treats - and
// _ alike.
func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// ErrTunnelTypes means the running kernel is too old for tunnel types
// other than ipip.
var ErrTunnelTypes = errors.New("tunnel types other than ipip need Linux 5.3 or newer")

// TunnelTypesSupported reports whether a kernel of release (uname -r)
// honours the tunnel type, port and flags of a real server (GUE and GRE
// encapsulation, Linux 5.3). Older kernels ignore those attributes: the
// real server silently becomes IPIP. known is false when the release
// cannot be parsed.
func TunnelTypesSupported(release string) (ok, known bool) {
	major, minor, known := parseRelease(release)
	if !known {
		return false, false
	}
	return major > 5 || major == 5 && minor >= 3, true
}

// parseRelease reads MAJOR.MINOR from the start of a kernel release.
func parseRelease(r string) (major, minor int, ok bool) {
	a, rest, ok1 := strings.Cut(r, ".")
	if !ok1 {
		return 0, 0, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return major, minor, true
}
