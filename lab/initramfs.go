package lab

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cavaliergopher/cpio"
)

// hostBinaries are copied into every VM, with their libraries.
func hostBinaries() []string { return []string{"/usr/sbin/ipvsadm", "/sbin/ip", "/bin/bash"} }

// guestFiles are small files every VM gets, for the director scripts that
// the importer tests run as they are: LSB init scripts source
// init-functions, scripts call /sbin/ipvsadm and sudo (the VM runs as
// root), and ipvsadm looks port names up in /etc/services (added from
// the host when it has one).
func guestFiles() map[string]string {
	return map[string]string{
		"lib/lsb/init-functions": `# init-functions for the lab: the LSB message functions, printing only.
log_success_msg() { echo "$@"; }
log_failure_msg() { echo "$@"; }
log_warning_msg() { echo "$@"; }
log_action_msg() { echo "$@"; }
log_begin_msg() { echo -n "$@"; }
log_end_msg() { echo; return "$1"; }
log_daemon_msg() { echo -n "$@"; }
log_progress_msg() { echo -n " $@"; }
`,
		"usr/bin/sudo": `#!/bin/sh
# sudo for the lab VM, where everything runs as root: drop the options.
while [ $# -gt 0 ]; do
	case "$1" in
	-u|-g|-C|-D|-h|-p|-r|-t|-U) shift 2 ;;
	--) shift; break ;;
	-*) shift ;;
	*) break ;;
	esac
done
exec "$@"
`,
	}
}

// HAPeers are the peers of the director HA tests, Debian's keepalived
// (VRRP) and bird2 (BGP and BFD: bird and birdc), all dynamically linked:
// a Config names them in HostBinaries when its tests need them, since
// their libraries double the initramfs.
func HAPeers() []string {
	return []string{"/usr/sbin/keepalived", "/usr/sbin/bird", "/usr/sbin/birdc"}
}

// moduleRoots are the module folders the VM gets, plus their dependencies.
func moduleRoots() []string {
	return []string{
		"kernel/net/netfilter/", "kernel/net/ipv4/", "kernel/net/ipv6/", "kernel/net/bridge/",
		"kernel/net/8021q/", "kernel/net/802/", "kernel/net/llc/", "kernel/net/sched/",
		"kernel/drivers/net/veth.ko", "kernel/drivers/net/dummy.ko", "kernel/drivers/net/macvlan.ko",
		"kernel/crypto/crc32c_generic.ko",
	}
}

// initScript is /init: it mounts the virtual file systems, makes the
// busybox applets available, runs /lab/cmd and reports its status.
const initScript = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /var/lib /root /sbin /usr/bin /usr/sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
echo LVSLAB-INIT
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
echo /bin/modprobe > /proc/sys/kernel/modprobe
modprobe crc32c_generic
/sbin/ip link set lo up
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LVS_LAB_GUEST=1
. /lab/env
cd /lab
/bin/sh /lab/cmd
echo LVSLAB-EXIT $?
sync
poweroff -f
`

type packer struct {
	w     *cpio.Writer
	dirs  map[string]bool
	files map[string]bool
}

func (p *packer) dir(name string) error {
	name = strings.Trim(path.Clean(name), "/")
	if name == "" || name == "." || p.dirs[name] {
		return nil
	}
	if err := p.dir(path.Dir(name)); err != nil {
		return err
	}
	p.dirs[name] = true
	return p.w.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeDir | 0o755, Links: 2})
}

func (p *packer) bytes(name string, data []byte, mode cpio.FileMode) error {
	name = strings.Trim(path.Clean(name), "/")
	if p.files[name] {
		return nil
	}
	if err := p.dir(path.Dir(name)); err != nil {
		return err
	}
	p.files[name] = true
	if err := p.w.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeReg | mode, Size: int64(len(data)), Links: 1}); err != nil {
		return err
	}
	_, err := p.w.Write(data)
	return err
}

func (p *packer) file(name, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	name = strings.Trim(path.Clean(name), "/")
	if p.files[name] {
		return nil
	}
	if err := p.dir(path.Dir(name)); err != nil {
		return err
	}
	p.files[name] = true
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := p.w.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeReg | cpio.FileMode(fi.Mode().Perm()), Size: fi.Size(), Links: 1}); err != nil {
		return err
	}
	_, err = io.Copy(p.w, f)
	return err
}

// binary copies an executable and, when it is dynamically linked, the
// libraries ldd names and the program interpreter. A file that is not ELF
// (a script, a data file) is copied as it is.
func (p *packer) binary(name, src string) error {
	if err := p.file(name, src); err != nil {
		return err
	}
	dyn, err := isDynamic(src)
	var notELF *elf.FormatError
	if errors.As(err, &notELF) {
		return nil // a plain file, copied as it is
	}
	if err != nil || !dyn {
		return err
	}
	out, err := exec.Command("ldd", src).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", src, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		default:
			continue
		}
		if err := p.file(lib, lib); err != nil {
			return fmt.Errorf("library %s of %s: %w", lib, src, err)
		}
	}
	return nil
}

func buildInitramfs(dst, release string, cfg Config) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	p := &packer{w: cpio.NewWriter(bw), dirs: map[string]bool{}, files: map[string]bool{}}

	if err := p.bytes("init", []byte(initScript), 0o755); err != nil {
		return err
	}
	if err := p.file("bin/busybox", "/bin/busybox"); err != nil {
		return fmt.Errorf("busybox-static: %w", err)
	}
	for _, b := range append(hostBinaries(), cfg.HostBinaries...) {
		if err := p.binary(b, b); err != nil {
			return err
		}
	}
	if err := packModules(p, release); err != nil {
		return err
	}
	guestPaths := make([]string, 0, len(cfg.Files))
	for g := range cfg.Files {
		guestPaths = append(guestPaths, g)
	}
	sort.Strings(guestPaths)
	for _, g := range guestPaths {
		if err := p.binary(g, cfg.Files[g]); err != nil {
			return fmt.Errorf("%s: %w", g, err)
		}
	}
	if err := p.bytes("lab/cmd", []byte(shellCommand(cfg.Command)+"\n"), 0o755); err != nil {
		return err
	}
	var env strings.Builder
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&env, "export %s=%s\n", k, shellQuote(cfg.Env[k]))
	}
	if err := p.bytes("lab/env", []byte(env.String()), 0o644); err != nil {
		return err
	}
	for _, d := range []string{"etc", "var/lib", "run", "tmp"} {
		if err := p.dir(d); err != nil {
			return err
		}
	}
	if err := p.bytes("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), 0o644); err != nil {
		return err
	}
	if err := p.bytes("etc/group", []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644); err != nil {
		return err
	}
	if _, err := os.Stat("/etc/services"); err == nil {
		if err := p.file("etc/services", "/etc/services"); err != nil {
			return err
		}
	}
	if err := p.binary("sbin/ipvsadm", "/usr/sbin/ipvsadm"); err != nil {
		return err
	}
	extra := guestFiles()
	names := make([]string, 0, len(extra))
	for n := range extra {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mode := cpio.FileMode(0o644)
		if strings.HasPrefix(extra[n], "#!") {
			mode = 0o755
		}
		if err := p.bytes(n, []byte(extra[n]), mode); err != nil {
			return err
		}
	}
	if err := p.w.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// packModules copies the module folders the lab needs with their
// dependencies (from modules.dep) and the module index files.
func packModules(p *packer, release string) error {
	root := filepath.Join("/lib/modules", release)
	deps, err := readModulesDep(filepath.Join(root, "modules.dep"))
	if err != nil {
		return err
	}
	want := map[string]bool{}
	var add func(m string)
	add = func(m string) {
		if want[m] {
			return
		}
		want[m] = true
		for _, d := range deps[m] {
			add(d)
		}
	}
	for m := range deps {
		for _, r := range moduleRoots() {
			if m == r || strings.HasSuffix(r, "/") && strings.HasPrefix(m, r) {
				add(m)
			}
		}
	}
	mods := make([]string, 0, len(want))
	for m := range want {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	for _, m := range mods {
		if err := p.file(path.Join("lib/modules", release, m), filepath.Join(root, m)); err != nil {
			return fmt.Errorf("module %s: %w", m, err)
		}
	}
	for _, idx := range []string{"modules.dep", "modules.alias", "modules.builtin", "modules.order", "modules.softdep", "modules.symbols", "modules.builtin.modinfo"} {
		if _, err := os.Stat(filepath.Join(root, idx)); err != nil {
			continue
		}
		if err := p.file(path.Join("lib/modules", release, idx), filepath.Join(root, idx)); err != nil {
			return err
		}
	}
	return nil
}

func readModulesDep(file string) (map[string][]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	deps := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
	}
	return deps, sc.Err()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellCommand(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
