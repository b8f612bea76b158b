package toa

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Check is one finding of Doctor.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	// Fix says what to do when the check fails (or warns).
	Fix string `json:"fix,omitempty"`
	// Warn marks a finding that does not stop eBPF TOA.
	Warn bool `json:"warn,omitempty"`
}

// Prober answers questions only the live kernel can (program and map
// types, helpers). Doctor skips them when it reads a fixture root.
type Prober interface {
	Probe() []Check
}

// Doctor checks what eBPF TOA needs from the host under the root: kernel
// release, BTF, cgroup v2, the BPF file system, capabilities and loaded
// TOA modules, each with what is missing and how to fix it. probe, when
// not nil, adds the live kernel's answers.
func Doctor(opts Options, probe Prober) []Check {
	var out []Check
	add := func(c Check) { out = append(out, c) }

	rel, err := KernelRelease(opts)
	switch {
	case err != nil:
		add(Check{Name: "kernel", Detail: err.Error(), Fix: "cannot read /proc/sys/kernel/osrelease"})
	default:
		if _, err := checkKernel(opts); err != nil {
			add(Check{Name: "kernel", Detail: err.Error(), Fix: fmt.Sprintf("run a kernel %s or newer (distribution kernels: Debian 11+, Ubuntu 22.04+, RHEL 9+)", MinKernel())})
		} else {
			add(Check{Name: "kernel", OK: true, Detail: fmt.Sprintf("%s (eBPF TOA needs %s+)", rel, MinKernel())})
		}
	}

	if _, err := os.Stat(opts.path("/sys/kernel/btf/vmlinux")); err == nil {
		add(Check{Name: "BTF", OK: true, Detail: "/sys/kernel/btf/vmlinux is present"})
	} else {
		add(Check{Name: "BTF", Warn: true, Detail: "no /sys/kernel/btf/vmlinux: the kernel has no BTF",
			Fix: "eBPF TOA does not need BTF; bpftool and program inspection do (CONFIG_DEBUG_INFO_BTF=y)"})
	}

	if u, err := UnifiedCgroup(opts); err == nil {
		add(Check{Name: "cgroup v2", OK: true, Detail: "unified hierarchy mounted at " + u})
	} else {
		add(Check{Name: "cgroup v2", Detail: "no cgroup2 file system is mounted",
			Fix: "mount it (mount -t cgroup2 none /sys/fs/cgroup/unified) or boot with systemd.unified_cgroup_hierarchy=1"})
	}

	if ok, err := bpffsMounted(opts); err == nil && ok {
		add(Check{Name: "bpffs", OK: true, Detail: "BPF file system mounted at /sys/fs/bpf"})
	} else {
		add(Check{Name: "bpffs", Detail: "no BPF file system at /sys/fs/bpf: pins (and attachment across restarts) need it",
			Fix: "mount -t bpf bpf /sys/fs/bpf (systemd mounts it at boot; add it to /etc/fstab elsewhere)"})
	}

	add(capCheck(opts))

	mods, err := FindModules(opts)
	switch {
	case err != nil:
		add(Check{Name: "TOA modules", Warn: true, Detail: err.Error()})
	case len(mods) == 0:
		add(Check{Name: "TOA modules", OK: true, Detail: "none loaded"})
	default:
		names := make([]string, len(mods))
		for i, m := range mods {
			names[i] = m.Name
		}
		add(Check{Name: "TOA modules", Warn: true, Detail: "loaded: " + strings.Join(names, ", ") + " (it rewrites addresses already)",
			Fix: "to move to eBPF TOA: rmmod " + mods[0].Name + ", then lvs-node toa attach; attaching while it is loaded needs --force and rewrites twice"})
	}
	if probe != nil {
		out = append(out, probe.Probe()...)
	}
	return out
}

// Capabilities eBPF TOA uses (bit numbers of CapEff).
const (
	capNetAdmin    = 12
	capSysAdmin    = 21
	capSysResource = 24
	capBPF         = 39
)

func capCheck(opts Options) Check {
	c := Check{Name: "capabilities"}
	b, err := os.ReadFile(opts.path("/proc/self/status"))
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	var eff uint64
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			eff, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				c.Detail = "CapEff: " + err.Error()
				return c
			}
		}
	}
	has := func(bit int) bool { return eff&(1<<bit) != 0 }
	var missing []string
	if !has(capBPF) && !has(capSysAdmin) {
		missing = append(missing, "CAP_BPF (or CAP_SYS_ADMIN before 5.8)")
	}
	if !has(capNetAdmin) {
		missing = append(missing, "CAP_NET_ADMIN")
	}
	if len(missing) > 0 {
		c.Detail = "missing " + strings.Join(missing, ", ")
		c.Fix = "run as root, or give the service AmbientCapabilities=CAP_BPF CAP_NET_ADMIN CAP_SYS_RESOURCE (CAP_SYS_ADMIN too for toa verify)"
		return c
	}
	c.OK = true
	c.Detail = "CAP_BPF and CAP_NET_ADMIN present"
	if !has(capSysResource) {
		c.Detail += "; no CAP_SYS_RESOURCE (kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK)"
	}
	if !has(capSysAdmin) {
		c.Detail += "; no CAP_SYS_ADMIN (toa verify needs it for its namespace and cgroup)"
	}
	return c
}

// FormatChecks renders checks for people, one per line, with the fixes.
func FormatChecks(cs []Check) string {
	var b strings.Builder
	for _, c := range cs {
		mark := "ok  "
		switch {
		case !c.OK && c.Warn:
			mark = "warn"
		case !c.OK:
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "%s  %-14s %s\n", mark, c.Name, c.Detail)
		if !c.OK && c.Fix != "" {
			fmt.Fprintf(&b, "      %-14s fix: %s\n", "", c.Fix)
		}
	}
	return b.String()
}

// Healthy reports whether no check failed (warnings allowed).
func Healthy(cs []Check) bool {
	for _, c := range cs {
		if !c.OK && !c.Warn {
			return false
		}
	}
	return true
}
