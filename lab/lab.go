package lab

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ExitMarker starts the line with which the guest reports the exit status
// of its command.
const ExitMarker = "LVSLAB-EXIT "

// bootMarker is printed by /init as soon as it runs.
const bootMarker = "LVSLAB-INIT"

// Config says what to run in the VM.
type Config struct {
	// Files maps guest paths to host files copied into the VM (binaries
	// get their shared libraries too).
	Files map[string]string
	// Command is run inside the VM by /init, with the environment
	// LVS_LAB_GUEST=1 and Env.
	Command []string
	Env     map[string]string
	// HostBinaries are more host programs to copy to the same paths in the
	// VM, with their libraries (keepalived for benchmarks, say).
	HostBinaries []string
	// Kernel release under /lib/modules and /boot; empty picks the newest
	// that has both.
	Kernel string
	// MemoryMiB and CPUs of the VM (defaults 2048 and 2).
	MemoryMiB int
	CPUs      int
	// Output receives the guest's console (carriage returns removed).
	Output io.Writer
	// Log receives the lab's own progress lines (boot time and the like).
	Log io.Writer
}

// Result describes one VM run.
type Result struct {
	ExitCode int
	Build    time.Duration // initramfs packing
	Boot     time.Duration // qemu start until /init ran
	Total    time.Duration // qemu start until the VM powered off
}

// ErrNoVerdict means the VM stopped without reporting an exit status.
var ErrNoVerdict = errors.New("lab VM ended without an exit status")

// Packages the lab needs on the host, by Debian package name.
func hostNeeds() []struct{ path, pkg string } {
	return []struct{ path, pkg string }{
		{"/usr/bin/qemu-system-x86_64", "qemu-system-x86"},
		{"/bin/busybox", "busybox-static"},
		{"/usr/sbin/ipvsadm", "ipvsadm"},
		{"/sbin/ip", "iproute2"},
	}
}

// CheckHost reports what the host lacks to run the lab, with the command
// that installs it.
func CheckHost() error {
	var missing []string
	for _, n := range hostNeeds() {
		if _, err := os.Stat(n.path); err != nil {
			missing = append(missing, n.pkg)
		}
	}
	if _, _, err := FindKernel(""); err != nil {
		missing = append(missing, "linux-image-amd64")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the lab needs packages that are missing: install them with\n  apt-get install -y %s", strings.Join(missing, " "))
	}
	return nil
}

// FindKernel returns the release and vmlinuz path of an installed kernel
// that has modules with IPVS: want if set, else the newest.
func FindKernel(want string) (release, vmlinuz string, err error) {
	entries, err := os.ReadDir("/lib/modules")
	if err != nil {
		return "", "", fmt.Errorf("no kernel modules installed (apt-get install linux-image-amd64): %w", err)
	}
	var releases []string
	for _, e := range entries {
		r := e.Name()
		if want != "" && r != want {
			continue
		}
		if _, err := os.Stat(filepath.Join("/boot", "vmlinuz-"+r)); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join("/lib/modules", r, "kernel/net/netfilter/ipvs/ip_vs.ko")); err != nil {
			continue
		}
		releases = append(releases, r)
	}
	if len(releases) == 0 {
		return "", "", errors.New("no installed kernel with IPVS modules and a /boot/vmlinuz (apt-get install linux-image-amd64)")
	}
	sort.Slice(releases, func(i, j int) bool { return versionLess(releases[i], releases[j]) })
	r := releases[len(releases)-1]
	return r, filepath.Join("/boot", "vmlinuz-"+r), nil
}

func versionLess(a, b string) bool {
	numRe := regexp.MustCompile(`\d+|\D+`)
	pa, pb := numRe.FindAllString(a, -1), numRe.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

// Run packs the initramfs, boots the VM, runs cfg.Command inside and
// returns its exit status. The context bounds the whole run.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	if err := CheckHost(); err != nil {
		return res, err
	}
	release, vmlinuz, err := FindKernel(cfg.Kernel)
	if err != nil {
		return res, err
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	out := cfg.Output
	if out == nil {
		out = io.Discard
	}
	fmt.Fprint(logw, sweptNote(sweepWorkDirs(os.TempDir(), time.Now())))
	tmp, err := makeWorkDir("")
	if err != nil {
		return res, fmt.Errorf("lab: %w", err)
	}
	defer os.RemoveAll(tmp)

	start := time.Now()
	initrd := filepath.Join(tmp, "initrd.cpio")
	if err := buildInitramfs(initrd, release, cfg); err != nil {
		return res, fmt.Errorf("lab: build initramfs: %w", err)
	}
	res.Build = time.Since(start)
	fi, _ := os.Stat(initrd)
	fmt.Fprintf(logw, "lab: initramfs for kernel %s packed in %.1fs (%d MiB)\n", release, res.Build.Seconds(), fi.Size()>>20)

	mem, cpus := cfg.MemoryMiB, cfg.CPUs
	if mem == 0 {
		mem = 2048
	}
	if cpus == 0 {
		cpus = 2
	}
	args := []string{
		"-accel", "tcg", "-cpu", "max", "-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-nographic", "-no-reboot", "-nic", "none", "-nodefaults", "-serial", "stdio",
		"-kernel", vmlinuz, "-initrd", initrd,
		"-append", "console=ttyS0 quiet loglevel=3 panic=-1 oops=panic",
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.Stdin = nil
	cmd.Stderr = out
	boundToParent(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, fmt.Errorf("lab: %w", err)
	}
	cmd.WaitDelay = 5 * time.Second
	bootStart := time.Now()
	// The thread that starts qemu is qemu's parent for Pdeathsig: keep it
	// until qemu is waited for.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("lab: start qemu: %w", err)
	}
	res.ExitCode = -1
	verdict, booted := false, false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		line = strings.ReplaceAll(line, "\r", "")
		switch {
		case !booted && strings.Contains(line, bootMarker):
			booted = true
			res.Boot = time.Since(bootStart)
			fmt.Fprintf(logw, "lab: VM booted to /init in %.1fs\n", res.Boot.Seconds())
			continue
		case strings.HasPrefix(line, ExitMarker):
			if n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, ExitMarker))); err == nil {
				res.ExitCode = n
				verdict = true
			}
			continue
		case !booted:
			continue // firmware noise before the kernel runs /init
		}
		fmt.Fprintln(out, line)
	}
	waitErr := cmd.Wait()
	res.Total = time.Since(bootStart)
	fmt.Fprintf(logw, "lab: VM ran %.1fs in all (boot %.1fs), guest exit status %d\n", res.Total.Seconds(), res.Boot.Seconds(), res.ExitCode)
	if ctx.Err() != nil {
		return res, fmt.Errorf("lab: %w", ctx.Err())
	}
	if !verdict {
		if waitErr != nil {
			return res, fmt.Errorf("%w (qemu: %v)", ErrNoVerdict, waitErr)
		}
		return res, ErrNoVerdict
	}
	return res, nil
}

// isDynamic reports whether the ELF file at path needs a program
// interpreter (is dynamically linked).
func isDynamic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}
