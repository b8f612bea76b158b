//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

const reliabDirector = `  - name: web
    vip: 10.0.0.100
    port: 80
    scheduler: rr
    bind_vip: true
    real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]
  - name: vrrp
    vip: 10.0.0.110
    port: 80
    scheduler: rr
    bind_vip: true
    real_servers: [{address: 10.0.0.11}]
`

// TestReliabilityDirectorRefusals: a reload the kernel refuses half-way
// (a real server at a local broadcast address: validation cannot know it,
// the kernel answers EINVAL) leaves the previous configuration running and
// the kernel back on it, and resyncs do not complete the refused reload; a
// second process on the state directory is refused with the holder named,
// while a dry run reads beside it; a VIP that was on the interface before
// bind_vip (keepalived's VRRP) survives a reload that drops its service
// and down, while the VIP lvs-node added goes.
func TestReliabilityDirectorRefusals(t *testing.T) {
	d := newDirectorLab(t)
	for _, h := range []*topo.Host{d.rs1, d.rs2} {
		drRealServer(t, h, "10.0.0.100", "10.0.0.110")
		h.ServeName(t, 80)
	}
	// The VRRP address, on the interface before lvs-node starts.
	d.dir.MustRun(t, "ip", "addr", "add", "10.0.0.110/32", "dev", "lo")
	// A broadcast address of the director's own: the kernel refuses it as
	// a real server.
	d.dir.MustRun(t, "ip", "route", "add", "broadcast", "10.0.0.250", "dev", "eth0", "table", "local")
	d.writeConfig(t, reliabDirector)
	proc := d.start(t)
	expectBoth(t, d.client, "10.0.0.100:80", "rs1", "rs2")
	good := d.save(t)

	// A second process on the same state directory.
	out, err := d.dir.Run(t, "lvs-node", "director", "--once", "--config", d.cfgPath)
	if err == nil || !strings.Contains(out, "state directory "+filepath.Join(d.tmp, "state")+" is held by pid "+strconv.Itoa(proc.Pid())+" (lvs-node director --config "+d.cfgPath+")") {
		t.Fatalf("--once beside the daemon: %v\n%s", err, out)
	}
	if out, err := d.dir.Run(t, "lvs-node", "director", "down", "--config", d.cfgPath); err == nil || !strings.Contains(out, "is held by pid") {
		t.Fatalf("down beside the daemon: %v\n%s", err, out)
	}
	if plan := d.dir.MustRun(t, "lvs-node", "director", "--dry-run", "--config", d.cfgPath); !strings.Contains(plan, "already matches") {
		t.Fatalf("dry run beside the daemon:\n%s", plan)
	}

	// The refused reload: web's second server re-weighted (applied first),
	// then a real server the kernel refuses.
	d.writeConfig(t, strings.Replace(reliabDirector, "{address: 10.0.0.12}]", "{address: 10.0.0.12, weight: 5}, {address: 10.0.0.250}]", 1))
	out, err = d.dir.Run(t, "lvs-node", "director", "reload", "--config", d.cfgPath)
	if err == nil {
		t.Fatalf("the kernel accepted a broadcast real server:\n%s\n%s", out, d.save(t))
	}
	mustContain(t, "reload refusal", out, "invalid argument", "the previous configuration was restored", "previous configuration stays in effect")
	t.Logf("refused reload:\n%s", out)
	if s := d.save(t); s != good {
		t.Fatalf("after the refused reload:\n%s\nwant:\n%s", s, good)
	}
	time.Sleep(2500 * time.Millisecond) // two resyncs
	if s := d.save(t); s != good {
		t.Fatalf("resyncs completed the refused reload:\n%s\nwant:\n%s", s, good)
	}
	expectBoth(t, d.client, "10.0.0.100:80", "rs1", "rs2")
	if strings.Contains(proc.Output(), "resync repaired drift") {
		t.Errorf("a resync found drift after the rollback:\n%s", proc.Output())
	}

	// The VRRP VIP: not lvs-node's. A reload without its service keeps it.
	if !hasAddr(t, d.dir, "lo", "10.0.0.100/32") {
		t.Fatal("bind_vip did not bind 10.0.0.100")
	}
	d.writeConfig(t, reliabDirector[:strings.Index(reliabDirector, "  - name: vrrp")])
	d.dir.MustRun(t, "lvs-node", "director", "reload", "--config", d.cfgPath)
	if !hasAddr(t, d.dir, "lo", "10.0.0.110/32") {
		t.Fatal("a reload removed the VRRP VIP lvs-node did not add")
	}
	if err := proc.Stop(10 * time.Second); !proc.Exited() {
		t.Fatalf("director did not stop: %v", err)
	}
	d.dir.MustRun(t, "lvs-node", "director", "down", "--config", d.cfgPath)
	if !hasAddr(t, d.dir, "lo", "10.0.0.110/32") {
		t.Fatal("down removed the VRRP VIP lvs-node did not add")
	}
	if hasAddr(t, d.dir, "lo", "10.0.0.100/32") {
		t.Fatal("down left the VIP lvs-node added")
	}
}

// freeScheduler returns a scheduler whose module is not loaded (unloading
// one that no service uses any more if need be). lblc and lblcr are left
// out: their module's init can hang behind dying namespaces (see
// TestIPVSNewSchedulerWhileNamespacesDie).
func freeScheduler(t *testing.T) string {
	t.Helper()
	cands := []string{"sed", "nq", "ovf", "fo", "dh", "lc"}
	for _, s := range cands {
		if !moduleLoaded(t, "ip_vs_"+s) {
			return s
		}
	}
	var sched string
	waitUntil(t, 60*time.Second, "a scheduler module to unload", func() bool {
		for _, s := range cands {
			if exec.Command("rmmod", "ip_vs_"+s).Run() == nil {
				sched = s
				return true
			}
		}
		return false
	})
	return sched
}

// modprobeWrapper puts a modprobe first on PATH that, for module mod,
// sleeps, fails or passes on to the real modprobe, as the file it returns
// says (sleep, fail, pass). It returns the PATH and that file.
func modprobeWrapper(t *testing.T, mod string) (path, mode string) {
	t.Helper()
	real, err := exec.LookPath("modprobe")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mode = filepath.Join(dir, "mode")
	script := `#!/bin/sh
case "$*" in
*` + mod + `*)
	case "$(cat ` + mode + `)" in
	sleep) exec sleep 3600 ;;
	fail) echo "modprobe: FATAL: Module ` + mod + ` not found" >&2; exit 1 ;;
	esac ;;
esac
exec ` + real + ` "$@"
`
	if err := os.WriteFile(filepath.Join(dir, "modprobe"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir + ":" + os.Getenv("PATH"), mode
}

// TestReliabilityStuckModprobe: a modprobe that hangs (a wrapper first on
// PATH) times out, is reported, and the daemon keeps serving metrics
// meanwhile and applies everything else; a resync with that one service
// impossible (its module cannot load) repairs drift on the others; the
// scheduler the kernel has no module for (twos, on Debian's 6.1) is
// refused by check and at reload, on this host.
func TestReliabilityStuckModprobe(t *testing.T) {
	d := newDirectorLab(t)
	modprobe(t, "ip_vs_rr")
	// A scheduler whose module is not loaded: other tests use some, and
	// the kernel frees their namespaces (and the modules' references)
	// later, so take the first that is free.
	sched := freeScheduler(t)
	t.Logf("scheduler with its module not loaded: %s", sched)
	for _, h := range []*topo.Host{d.rs1, d.rs2} {
		drRealServer(t, h, "10.0.0.100", "10.0.0.105")
		h.ServeName(t, 80)
	}
	path, mode := modprobeWrapper(t, "ip_vs_"+sched)
	setMode := func(m string) {
		t.Helper()
		if err := os.WriteFile(mode, []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setMode("sleep")
	services := reliabDirector[:strings.Index(reliabDirector, "  - name: vrrp")] + `  - name: sched
    vip: 10.0.0.105
    port: 80
    scheduler: ` + sched + `
    bind_vip: true
    real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]
`
	d.writeConfig(t, services)
	start := time.Now()
	proc := d.dir.Start(t, "env", "PATH="+path, "lvs-node", "director", "--config", d.cfgPath)
	if !proc.WaitOutput("metrics ready", 30*time.Second) {
		t.Fatalf("director did not start:\n%s", proc.Output())
	}
	// While modprobe hangs, metrics answer at once.
	var slowest time.Duration
	for time.Since(start) < 10*time.Second {
		t0 := time.Now()
		m := d.metrics(t)
		if took := time.Since(t0); took > slowest {
			slowest = took
		}
		if !strings.Contains(m, "lvs_node_director_reloads_total") {
			t.Fatalf("metrics during the stuck modprobe:\n%s", m)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("metrics answered within %v each while modprobe hung (it hangs for 30 s)", slowest.Round(time.Millisecond))
	if slowest > 10*time.Second {
		t.Errorf("a scrape waited %v behind the stuck modprobe", slowest)
	}
	if !proc.WaitOutput("could not be loaded", 60*time.Second) {
		t.Fatalf("the stuck modprobe was not given up on:\n%s", proc.Output())
	}
	t.Logf("the stuck modprobe was given up on %v after the start", time.Since(start).Round(time.Second))
	mustContain(t, "log", proc.Output(), "1 service(s) could not be applied, everything else was")
	table := d.save(t)
	mustContain(t, "table", table, "-A -t 10.0.0.100:80 -s rr", "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 1")
	if strings.Contains(table, "10.0.0.105") {
		t.Fatalf("the service of the stuck module was created:\n%s", table)
	}
	expectBoth(t, d.client, "10.0.0.100:80", "rs1", "rs2")

	// Now its module cannot load at all: every resync fails fast on it. A
	// scrape then, to compare with those during the stuck modprobe.
	setMode("fail")
	time.Sleep(time.Second)
	t0 := time.Now()
	d.metrics(t)
	t.Logf("a scrape with no stuck call took %v", time.Since(t0).Round(time.Millisecond))

	// Drift on web is still repaired.
	d.dir.MustRun(t, "ipvsadm", "-d", "-t", "10.0.0.100:80", "-r", "10.0.0.12:80")
	waitUntil(t, 90*time.Second, "drift on web repaired beside the impossible service", func() bool {
		return strings.Contains(d.save(t), "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 1")
	})
	if !proc.WaitOutput("resync repaired drift", 10*time.Second) {
		t.Fatalf("the repair was not logged:\n%s", proc.Output())
	}
	mustContain(t, "log", proc.Output(), `scheduler \"`+sched+`\" is not available in this kernel`)

	// The module loads again: the service comes at a resync.
	setMode("pass")
	waitUntil(t, 90*time.Second, "the "+sched+" service once its module loads", func() bool {
		return strings.Contains(d.save(t), "-A -t 10.0.0.105:80 -s "+sched)
	})
	if seen := spread(t, d.client, "10.0.0.105:80", 4); seen["rs1"]+seen["rs2"] != 4 {
		t.Fatalf("the %s service answered %v", sched, seen)
	}

	// twos: Debian's 6.1 has no module for it. check says so here, and the
	// daemon refuses the reload.
	d.writeConfig(t, strings.Replace(services, "scheduler: "+sched, "scheduler: twos", 1))
	out, err := d.dir.Run(t, "lvs-node", "check", "--config", d.cfgPath)
	if err == nil || !strings.Contains(out, "virtual_services[1].scheduler: scheduler twos cannot be used on this host") {
		t.Fatalf("check of twos on 6.1: %v\n%s", err, out)
	}
	before := d.save(t)
	out, err = d.dir.Run(t, "lvs-node", "director", "reload", "--socket", d.sock)
	if err == nil || !strings.Contains(out, "scheduler twos cannot be used on this host") {
		t.Fatalf("reload to twos: %v\n%s", err, out)
	}
	if s := d.save(t); s != before {
		t.Fatalf("the refused reload changed the table:\n%s\nwant:\n%s", s, before)
	}
}

// TestReliabilityRealserverRestartUnderTraffic: restarting lvs-node
// realserver on a real server (DR and TUN) during a bounded stream of
// requests through the director fails none of them. As a control, the
// same with restore_on_exit: true (the old default) and a short stop does
// fail requests: the test can see a gap.
func TestReliabilityRealserverRestartUnderTraffic(t *testing.T) {
	d := newDirectorLab(t)
	d.writeConfig(t, threeKinds[:strings.Index(threeKinds, "  - name: nat")]) // dr and tun
	rsBody := `  watch_interval: 500ms
  vips:
    - {address: 10.0.0.100, mode: dr}
    - {address: 10.0.0.101, mode: tun}
`
	start := func(h *topo.Host, cfg string) *topo.Proc {
		t.Helper()
		p := h.Start(t, "lvs-node", "realserver", "--config", cfg)
		if !p.WaitOutput("real server ready", 20*time.Second) {
			t.Fatalf("realserver on %s not ready:\n%s", h.Name, p.Output())
		}
		return p
	}
	cfg1 := writeRSConfig(t, "rs1", rsBody+"listen: {control: \"\"}\n")
	cfg2 := writeRSConfig(t, "rs2", rsBody+"listen: {control: \"\"}\n")
	p1 := start(d.rs1, cfg1)
	start(d.rs2, cfg2)
	for _, h := range []*topo.Host{d.rs1, d.rs2} {
		h.ServeName(t, 80)
	}
	d.start(t)
	expectBoth(t, d.client, "10.0.0.100:80", "rs1", "rs2")
	expectBoth(t, d.client, "10.0.0.101:80", "rs1", "rs2")

	// stream sends requests alternately to the DR and the TUN VIP while
	// restart runs, then a few more; it returns the requests and failures.
	stream := func(restart func()) (done, failed int64, first error) {
		var n, bad atomic.Int64
		var firstErr atomic.Value
		stop := make(chan struct{})
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				vip := []string{"10.0.0.100:80", "10.0.0.101:80"}[i%2]
				if _, err := d.client.Get(vip, 2*time.Second); err != nil {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("%s: %w", vip, err))
				}
				n.Add(1)
			}
		}()
		for n.Load() < 20 {
			time.Sleep(10 * time.Millisecond)
		}
		restart()
		after := n.Load()
		for n.Load() < after+40 {
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		<-finished
		if e, ok := firstErr.Load().(error); ok {
			first = e
		}
		return n.Load(), bad.Load(), first
	}

	done, failed, first := stream(func() {
		for range 3 {
			if err := p1.Stop(10 * time.Second); !p1.Exited() {
				t.Fatalf("realserver did not stop: %v", err)
			}
			time.Sleep(300 * time.Millisecond)
			p1 = start(d.rs1, cfg1)
			time.Sleep(300 * time.Millisecond)
		}
	})
	t.Logf("restart under traffic: %d requests, %d failed, across 3 restarts of lvs-node realserver", done, failed)
	if failed != 0 {
		t.Fatalf("%d of %d requests failed across restarts; first: %v\n%s", failed, done, first, p1.Output())
	}
	mustContain(t, "restart log", p1.Output(), `msg="real server ready" changes=0`)

	// The control: restoring on exit opens a gap the stream sees.
	p1.Stop(10 * time.Second)
	cfgRestore := writeRSConfig(t, "rs1r", rsBody+"  restore_on_exit: true\nlisten: {control: \"\"}\n")
	d.rs1.MustRun(t, "lvs-node", "realserver", "down", "--config", cfg1)
	p1 = start(d.rs1, cfgRestore)
	_, controlFailed, _ := stream(func() {
		p1.Stop(10 * time.Second)
		time.Sleep(1500 * time.Millisecond)
		p1 = start(d.rs1, cfgRestore)
	})
	t.Logf("control with restore_on_exit: true and a 1.5 s stop: %d requests failed", controlFailed)
	if controlFailed == 0 {
		t.Error("the control saw no failure: the stream cannot tell a gap")
	}
}
