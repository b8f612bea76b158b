package toa

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MinKernel is the oldest kernel eBPF TOA runs on: sock_ops sees the
// handshake-completing ACK since 5.10.
var minKernel = [2]int{5, 10}

// MinKernel returns the oldest kernel release eBPF TOA supports.
func MinKernel() string { return fmt.Sprintf("%d.%d", minKernel[0], minKernel[1]) }

// KernelRelease reads the running kernel's release under the root.
func KernelRelease(opts Options) (string, error) {
	b, err := os.ReadFile(opts.path("/proc/sys/kernel/osrelease"))
	if err != nil {
		return "", fmt.Errorf("kernel release: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// parseRelease returns the major and minor numbers of a release such as
// 6.1.0-57-amd64.
func parseRelease(rel string) (int, int, error) {
	f := strings.FieldsFunc(rel, func(r rune) bool { return r < '0' || r > '9' })
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("cannot read a version from kernel release %q", rel)
	}
	maj, err1 := strconv.Atoi(f[0])
	minr, err2 := strconv.Atoi(f[1])
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("kernel release %q: %w", rel, err)
	}
	return maj, minr, nil
}

// checkKernel fails with ErrKernel for kernels older than MinKernel.
func checkKernel(opts Options) (string, error) {
	rel, err := KernelRelease(opts)
	if err != nil {
		return "", err
	}
	maj, minr, err := parseRelease(rel)
	if err != nil {
		return rel, err
	}
	if maj < minKernel[0] || maj == minKernel[0] && minr < minKernel[1] {
		return rel, fmt.Errorf("kernel %s: %w: sock_ops programs see the handshake ACK only since %s", rel, ErrKernel, MinKernel())
	}
	return rel, nil
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Point  string
	FSType string
}

// Mounts reads the mount table under the root.
func Mounts(opts Options) ([]Mount, error) {
	b, err := os.ReadFile(opts.path("/proc/self/mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("mount table: %w", err)
	}
	return parseMountinfo(b), nil
}

func parseMountinfo(b []byte) []Mount {
	var out []Mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 1 {
			continue
		}
		out = append(out, Mount{Point: unescapeMount(f[4]), FSType: g[0]})
	}
	return out
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// UnifiedCgroup returns where the cgroup v2 hierarchy is mounted:
// /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts.
func UnifiedCgroup(opts Options) (string, error) {
	ms, err := Mounts(opts)
	if err != nil {
		return "", err
	}
	var found []string
	for _, m := range ms {
		if m.FSType == "cgroup2" {
			found = append(found, m.Point)
		}
	}
	for _, want := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		for _, p := range found {
			if p == want {
				return p, nil
			}
		}
	}
	if len(found) > 0 {
		return found[0], nil
	}
	return "", fmt.Errorf("%w: no cgroup2 file system is mounted (mount -t cgroup2 none /sys/fs/cgroup)", ErrNoCgroup)
}

// bpffsMounted reports whether a BPF file system is mounted at /sys/fs/bpf
// under the root.
func bpffsMounted(opts Options) (bool, error) {
	ms, err := Mounts(opts)
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if m.FSType == "bpf" && m.Point == "/sys/fs/bpf" {
			return true, nil
		}
	}
	return false, nil
}

// cgroupDir checks that path is a live cgroup v2 directory and returns
// its cgroup id.
func cgroupDir(path string, opts Options) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("cgroup %s: %w: it does not exist", path, ErrNoCgroup)
		}
		return 0, fmt.Errorf("cgroup %s: %w", path, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		hint := ""
		if u, err := UnifiedCgroup(opts); err == nil {
			hint = fmt.Sprintf("; the cgroup v2 hierarchy is mounted at %s", u)
		}
		return 0, fmt.Errorf("%s: %w: it is not in the cgroup v2 (unified) hierarchy%s", path, ErrNoCgroup, hint)
	}
	return cgroupID(path)
}

// cgroupID returns the id of the cgroup at path (its file handle).
func cgroupID(path string) (uint64, error) {
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, path, 0)
	if err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", path, err)
	}
	b := h.Bytes()
	if len(b) < 8 {
		return 0, fmt.Errorf("cgroup id of %s: short handle", path)
	}
	return binary.NativeEndian.Uint64(b[:8]), nil
}

// cgroupPath finds the directory of cgroup id below the unified mount;
// "" when it is not found (a removed cgroup).
func cgroupPath(id uint64, opts Options) string {
	root, err := UnifiedCgroup(opts)
	if err != nil {
		return ""
	}
	found := ""
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if cid, err := cgroupID(p); err == nil && cid == id {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// checkBPFFS fails with ErrNoBPFFS when dir (or the nearest existing
// directory above it) is not on a BPF file system.
func checkBPFFS(dir string) error {
	p := dir
	for {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if err == nil {
			if st.Type != unix.BPF_FS_MAGIC {
				return fmt.Errorf("pin directory %s: %w (mount one: mount -t bpf bpf /sys/fs/bpf; systemd does at boot)", dir, ErrNoBPFFS)
			}
			return nil
		}
		if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("pin directory %s: %w", dir, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("pin directory %s: %w", dir, ErrNoBPFFS)
		}
		p = parent
	}
}
