//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/lab/topo"
	"github.com/lvs-node/lvs-node/packaging"
)

// capNumbers are the capabilities the units name.
var capNumbers = map[string]uintptr{
	"CAP_NET_ADMIN": unix.CAP_NET_ADMIN, "CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_SYS_MODULE": unix.CAP_SYS_MODULE,
	"CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF,
}

// unitCaps returns CapabilityBoundingSet of the packaged unit of role.
func unitCaps(t *testing.T, role string) []string {
	t.Helper()
	f, err := packaging.Files.Open("systemd/lvs-node-" + role + ".service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapabilityBoundingSet="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("lvs-node-%s.service has no CapabilityBoundingSet", role)
	return nil
}

// runWithCaps runs lvs-node on h as root with only caps in its bounding
// set, as systemd runs the unit: the set is dropped on a thread of its own
// inside h's namespace, which then starts the command (the child inherits
// the thread's credentials) and is retired.
func runWithCaps(t *testing.T, h *topo.Host, caps []string, args ...string) (string, error) {
	t.Helper()
	keep := map[uintptr]bool{}
	for _, c := range caps {
		n, ok := capNumbers[c]
		if !ok {
			t.Fatalf("unknown capability %s", c)
		}
		keep[n] = true
	}
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Fatal(err)
	}
	last, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		// This thread never unlocks: once its bounding set is reduced it
		// must not run other goroutines or start threads, so it exits with
		// the goroutine.
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(h.NetnsPath())
		if err == nil {
			err = netns.Set(ns)
			ns.Close()
		}
		for c := 0; c <= last && err == nil; c++ {
			if !keep[uintptr(c)] && c != unix.CAP_SETPCAP {
				err = unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
			}
		}
		if err == nil && !keep[unix.CAP_SETPCAP] {
			err = unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_SETPCAP, 0, 0, 0)
		}
		if err != nil {
			done <- result{err: fmt.Errorf("set up the thread: %w", err)}
			return
		}
		out, err := exec.Command("lvs-node", args...).CombinedOutput()
		done <- result{out, err}
	}()
	r := <-done
	out, runErr := r.out, r.err
	return string(out), runErr
}

func without(caps []string, drop string) []string {
	var out []string
	for _, c := range caps {
		if c != drop {
			out = append(out, c)
		}
	}
	return out
}

// unloadModule removes mod so that the next use has to load it.
func unloadModule(t *testing.T, mod string) {
	t.Helper()
	if moduleLoaded(t, mod) {
		if out, err := exec.Command("rmmod", mod).CombinedOutput(); err != nil {
			t.Fatalf("rmmod %s: %v: %s", mod, err, out)
		}
	}
}

// The capabilities the units grant are enough for each role, and
// CAP_SYS_MODULE is needed: the director loads IPVS scheduler modules
// itself and the real server loads ipip for tun VIPs. Without it both
// fail with the module named.
func TestUnitCapabilities(t *testing.T) {
	modprobe(t, "ip_vs")
	l := topo.New(t)
	lan := l.Net("lan", "10.0.0.0/24")
	dir := l.Host("director", topo.On(lan, "10.0.0.1"))
	rs := l.Host("rs1", topo.On(lan, "10.0.0.11"))
	tmp := t.TempDir()

	dcfg := filepath.Join(tmp, "director.yaml")
	body := fmt.Sprintf("director:\n  state_dir: %s/director\nlisten: {metrics: \"\", control: \"\"}\nvirtual_services:\n"+
		"  - {name: web, vip: 10.0.0.100, port: 80, scheduler: sed, real_servers: [{address: 10.0.0.11}]}\n", tmp)
	if err := os.WriteFile(dcfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	caps := unitCaps(t, "director")
	unloadModule(t, "ip_vs_sed")
	out, err := runWithCaps(t, dir, without(caps, "CAP_SYS_MODULE"), "director", "--once", "--config", dcfg)
	if err == nil || !strings.Contains(out, "ip_vs_sed") {
		t.Fatalf("the director without CAP_SYS_MODULE: %v\n%s", err, out)
	}
	if moduleLoaded(t, "ip_vs_sed") {
		t.Fatal("ip_vs_sed got loaded without CAP_SYS_MODULE")
	}
	if out, err := runWithCaps(t, dir, caps, "director", "--once", "--config", dcfg); err != nil {
		t.Fatalf("the director with the unit's capabilities %v: %v\n%s", caps, err, out)
	}
	if table := dir.MustRun(t, "ipvsadm", "-Ln"); !strings.Contains(table, "TCP  10.0.0.100:80 sed") {
		t.Fatalf("IPVS after the director ran with the unit's capabilities:\n%s", table)
	}

	rcfg := filepath.Join(tmp, "realserver.yaml")
	body = fmt.Sprintf("realserver:\n  state_dir: %s/rs\n  vips: [{address: 10.0.0.100, mode: dr}, {address: 10.0.0.101, mode: tun}]\nlisten: {control: \"\"}\n", tmp)
	if err := os.WriteFile(rcfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	caps = unitCaps(t, "realserver")
	unloadModule(t, "ipip")
	out, err = runWithCaps(t, rs, without(caps, "CAP_SYS_MODULE"), "realserver", "up", "--config", rcfg)
	if err == nil || !strings.Contains(out, "ipip") {
		t.Fatalf("the real server without CAP_SYS_MODULE: %v\n%s", err, out)
	}
	if out, err := runWithCaps(t, rs, caps, "realserver", "up", "--config", rcfg); err != nil {
		t.Fatalf("the real server with the unit's capabilities %v: %v\n%s", caps, err, out)
	}
	if tun := rs.MustRun(t, "ip", "-4", "addr", "show", "dev", "tunl0"); !strings.Contains(tun, "10.0.0.101/32") {
		t.Fatalf("realserver up with the unit's capabilities left tunl0 without the VIP:\n%s", tun)
	}
	if out, err := runWithCaps(t, rs, caps, "realserver", "down", "--config", rcfg); err != nil {
		t.Fatalf("realserver down with the unit's capabilities: %v\n%s", err, out)
	}
}
