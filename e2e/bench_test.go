//go:build e2e

package e2e

// Benchmarks of IPVS programming, side by side with ipvsadm and keepalived
// in the same VM run. They run only with -bench (make bench):
//
//	go test -tags e2e -count=1 -run '^$' -bench . -benchtime 1x -timeout 60m ./e2e
//
// Every contender starts from an empty table in a network namespace of its
// own, so none of them sees (or pays for) another's table. See
// docs/benchmarks.md for the method and the figures.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mobyipvs "github.com/moby/ipvs"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/sdnotify/sdnotifytest"
	"github.com/lvs-node/lvs-node/lab/topo"
)

// benchReal is the number of real servers per service.
const benchReal = 10

// benchHost is a fresh namespace with an IPVS client in it.
func benchHost(b *testing.B, name string) (*topo.Host, *ipvs.Client) {
	b.Helper()
	modprobe(b, "ip_vs", "ip_vs_wlc")
	l := topo.New(b)
	lan := l.Net("lan", "10.1.0.0/24")
	h := l.Host(name, topo.On(lan, "10.1.0.1"))
	var c *ipvs.Client
	if err := h.Do(func() error {
		var err error
		c, err = ipvs.Open()
		return err
	}); err != nil {
		b.Fatalf("open IPVS client in %s: %v", name, err)
	}
	b.Cleanup(func() { c.Close() })
	b.Cleanup(func() { flush(b, h) })
	return h, c
}

// flush empties the IPVS table of h. The kernel keeps the services of all
// namespaces in one hash table, and /proc/net/ip_vs of one namespace
// skips entries when another namespace holds services too (seen with
// 6.1: it listed 500 of 1,000 services while another namespace held
// 1,000): every contender empties its table before the next one starts.
func flush(b *testing.B, h *topo.Host) {
	b.Helper()
	h.MustRun(b, "ipvsadm", "-C")
}

// procCount counts the services and real servers /proc/net/ip_vs of h
// lists.
func procCount(h *topo.Host) (svcs, dests int, err error) {
	err = h.Do(func() error {
		f, err := os.Open("/proc/thread-self/net/ip_vs")
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "  -> ") && !strings.Contains(line, "RemoteAddress"):
				dests++
			case strings.HasPrefix(line, "TCP ") || strings.HasPrefix(line, "UDP ") ||
				strings.HasPrefix(line, "SCTP ") || strings.HasPrefix(line, "FWM "):
				svcs++
			}
		}
		return sc.Err()
	})
	return svcs, dests, err
}

func mustHold(b *testing.B, h *topo.Host, who string, n int) {
	b.Helper()
	s, d, err := procCount(h)
	if err != nil {
		b.Fatal(err)
	}
	if s != n || d != n*benchReal {
		b.Fatalf("%s: /proc/net/ip_vs holds %d services and %d real servers, want %d and %d", who, s, d, n, n*benchReal)
	}
}

// benchServices groups bulkTable's ops by service.
func benchServices(ops []ipvs.Op) [][]ipvs.Op {
	var out [][]ipvs.Op
	for _, op := range ops {
		if op.Kind == ipvs.AddService {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], op)
	}
	return out
}

// keepalivedConf renders the services of ops as keepalived virtual_server
// blocks without checkers.
func keepalivedConf(ops []ipvs.Op) string {
	var s strings.Builder
	s.WriteString("global_defs {\n    router_id lvsbench\n}\n")
	for _, g := range benchServices(ops) {
		svc := g[0].Service
		fmt.Fprintf(&s, "virtual_server %s %d {\n    lb_algo %s\n    lb_kind DR\n    protocol TCP\n", svc.Addr, svc.Port, svc.Scheduler)
		for _, op := range g[1:] {
			fmt.Fprintf(&s, "    real_server %s %d {\n        weight %d\n    }\n", op.Dest.Addr, op.Dest.Port, op.Dest.Weight)
		}
		s.WriteString("}\n")
	}
	return s.String()
}

// directorYAML renders the services of ops as a director.yaml. When bump
// is true, the first real server of the last service gets weight 99.
func directorYAML(ops []ipvs.Op, stateDir string, bump bool) string {
	var s strings.Builder
	fmt.Fprintf(&s, "director:\n  state_dir: %s\nlisten:\n  metrics: \"\"\n  control: \"\"\nvirtual_services:\n", stateDir)
	groups := benchServices(ops)
	writeServices(&s, groups, 0, len(groups), "  ", bump)
	return s.String()
}

// writeServices renders groups[from:to] as a list of virtual services,
// each line indented by ind. When bump is true, the first real server of
// the last service of groups gets weight 99.
func writeServices(s *strings.Builder, groups [][]ipvs.Op, from, to int, ind string, bump bool) {
	for i := from; i < to; i++ {
		g := groups[i]
		svc := g[0].Service
		fmt.Fprintf(s, "%[1]s- name: s%[2]d\n%[1]s  vip: %[3]s\n%[1]s  protocol: tcp\n%[1]s  port: %[4]d\n%[1]s  scheduler: %[5]s\n%[1]s  forwarding: dr\n%[1]s  real_servers:\n",
			ind, i, svc.Addr, svc.Port, svc.Scheduler)
		for j, op := range g[1:] {
			w := op.Dest.Weight
			if bump && i == len(groups)-1 && j == 0 {
				w = 99
			}
			fmt.Fprintf(s, "%s    - {address: %s, port: %d, weight: %d}\n", ind, op.Dest.Addr, op.Dest.Port, w)
		}
	}
}

func writeFile(b *testing.B, dir, name, text string) string {
	b.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// timeCmd runs a command in h, feeding it stdin, and returns how long it
// took and its peak resident memory in bytes.
func timeCmd(b *testing.B, h *topo.Host, stdin string, name string, args ...string) (time.Duration, int64) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := h.Command(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out.String(), 2000))
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss * 1024
	}
	return took, rss
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// buildTable programs n services x 10 real servers with the client.
func buildTable(b *testing.B, c *ipvs.Client, ops []ipvs.Op) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	if err := c.Apply(ctx, ops); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// keepalivedTime starts keepalived with conf in h and returns the time
// from its start until /proc/net/ip_vs holds all n services with their
// real servers.
func keepalivedTime(b *testing.B, h *topo.Host, dir string, conf string, n int, last ipvs.Service) time.Duration {
	b.Helper()
	cf := writeFile(b, dir, "keepalived.conf", conf)
	// keepalived adds services in the order of the file and each
	// service's real servers right after it: poll the last service's real
	// servers (one small dump) every 2 ms, then confirm the whole table.
	mh := ipvsHandle(b, h)
	defer mh.Close()
	probe := &mobyipvs.Service{AddressFamily: af4, Protocol: uint16(ipvs.TCP), Address: net.IP(last.Addr.AsSlice()), Port: last.Port}
	start := time.Now()
	// No -l: keepalived would log every change to the serial console,
	// which under emulation slows it (and the whole VM) down.
	p := h.Start(b, "keepalived", "-n", "-C", "-f", cf,
		"-p", filepath.Join(dir, "keepalived.pid"), "-c", filepath.Join(dir, "checkers.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
	deadline := start.Add(20 * time.Minute)
	for {
		if ds, err := mh.GetDestinations(probe); err == nil && len(ds) == benchReal {
			took := time.Since(start)
			if s, d, err := procCount(h); err == nil && s == n && d == n*benchReal {
				// Stop keepalived before the table is flushed, so that it
				// does not repair it.
				if err := p.Stop(2 * time.Minute); err != nil && !p.Exited() {
					b.Fatalf("stop keepalived: %v", err)
				}
				return took
			}
		}
		if p.Exited() {
			b.Fatalf("keepalived exited: %v\n%s", p.Wait(0), tail(p.Output(), 3000))
		}
		if time.Now().After(deadline) {
			s, d, _ := procCount(h)
			b.Fatalf("keepalived: %d services, %d real servers after %s\n%s", s, d, time.Since(start), tail(p.Output(), 3000))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ratio(a, b time.Duration) float64 { return a.Seconds() / b.Seconds() }

// BenchmarkProgram programs n services x 10 real servers from empty with
// every contender: the ipvs client in process, the lvs-node director
// command (--once, from process start), ipvsadm -R and keepalived.
func BenchmarkProgram(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			ops, script := bulkTable(n)
			last := ops[len(ops)-benchReal-1].Service
			tmp := b.TempDir()

			h, c := benchHost(b, "client")
			apply := buildTable(b, c, ops)
			mustHold(b, h, "Client.Apply", n)
			flush(b, h)

			h, _ = benchHost(b, "director")
			cfg := writeFile(b, tmp, "director.yaml", directorYAML(ops, filepath.Join(tmp, "state"), false))
			once, onceRSS := timeCmd(b, h, "", "lvs-node", "director", "--once", "--log-level", "warn", "--config", cfg)
			mustHold(b, h, "lvs-node director --once", n)
			flush(b, h)

			h, _ = benchHost(b, "ipvsadm")
			restore, _ := timeCmd(b, h, script, "ipvsadm", "-R")
			mustHold(b, h, "ipvsadm -R", n)
			flush(b, h)

			h, _ = benchHost(b, "keepalived")
			ka := keepalivedTime(b, h, tmp, keepalivedConf(ops), n, last)

			b.ReportMetric(apply.Seconds(), "apply-s")
			b.ReportMetric(once.Seconds(), "director-once-s")
			b.ReportMetric(restore.Seconds(), "ipvsadm-R-s")
			b.ReportMetric(ka.Seconds(), "keepalived-s")
			b.ReportMetric(ratio(restore, once), "x-faster-than-ipvsadm")
			b.ReportMetric(ratio(ka, once), "x-faster-than-keepalived")
			fmt.Printf("\nProgram %d services x %d real servers (%d objects) from empty:\n", n, benchReal, len(ops))
			fmt.Printf("  %-34s %10s %10s %10s\n", "contender", "seconds", "vs ipvsadm", "vs keepalived")
			for _, r := range []struct {
				name string
				d    time.Duration
			}{
				{"ipvs.Client.Apply (library)", apply},
				{"lvs-node director --once", once},
				{"ipvsadm -R", restore},
				{"keepalived (start to complete)", ka},
			} {
				fmt.Printf("  %-34s %10.3f %9.1fx %9.1fx\n", r.name, r.d.Seconds(), ratio(restore, r.d), ratio(ka, r.d))
			}
			fmt.Printf("  lvs-node director --once peak RSS: %.1f MB\n", float64(onceRSS)/1e6)
		})
	}
}

// BenchmarkNoopRead reads an unchanged table of 10,000 services x 10 real
// servers: ipvs.Client.Table, the director's no-op reconciliation (in
// process, and as a whole lvs-node director --once run), and ipvsadm -Ln.
func BenchmarkNoopRead(b *testing.B) {
	const n = 10000
	ops, _ := bulkTable(n)
	h, c := benchHost(b, "read")
	buildTable(b, c, ops)
	tmp := b.TempDir()
	state := filepath.Join(tmp, "state")
	cfgPath := writeFile(b, tmp, "director.yaml", directorYAML(ops, state, false))
	// Let the director adopt the table (and record it as its own).
	timeCmd(b, h, "", "lvs-node", "director", "--once", "--log-level", "warn", "--config", cfgPath)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	tab, err := c.Table(ctx)
	table := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if len(tab.Services) != n || len(tab.Services[n-1].Dests) != benchReal {
		b.Fatalf("Table read %d services", len(tab.Services))
	}

	cfg, _, err := director.LoadConfig(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	eng := director.NewEngine(state, director.Deps{Kernel: c})
	start = time.Now()
	done, err := eng.Apply(ctx, cfg)
	reconcile := time.Since(start)
	if err != nil || len(done) != 0 {
		b.Fatalf("no-op reconcile made %d changes: %v", len(done), err)
	}

	once, onceRSS := timeCmd(b, h, "", "lvs-node", "director", "--once", "--log-level", "warn", "--config", cfgPath)
	list, _ := timeCmd(b, h, "", "ipvsadm", "-Ln")
	mustHold(b, h, "after the reads", n)

	b.ReportMetric(table.Seconds(), "table-s")
	b.ReportMetric(reconcile.Seconds(), "engine-noop-s")
	b.ReportMetric(once.Seconds(), "director-once-noop-s")
	b.ReportMetric(list.Seconds(), "ipvsadm-Ln-s")
	b.ReportMetric(float64(onceRSS)/1e6, "director-once-peak-MB")
	fmt.Printf("\nNo-op read of %d services x %d real servers:\n", n, benchReal)
	fmt.Printf("  %-40s %10s %12s\n", "contender", "seconds", "vs ipvsadm")
	for _, r := range []struct {
		name string
		d    time.Duration
	}{
		{"ipvs.Client.Table", table},
		{"director.Engine no-op reconcile", reconcile},
		{"lvs-node director --once (no changes)", once},
		{"ipvsadm -Ln", list},
	} {
		fmt.Printf("  %-40s %10.3f %11.1fx\n", r.name, r.d.Seconds(), ratio(list, r.d))
	}
	fmt.Printf("  lvs-node director --once peak RSS holding the table: %.1f MB\n", float64(onceRSS)/1e6)
}

// BenchmarkWeightChange changes one weight in a table of 10,000 services x
// 10 real servers: one EditDest through ipvs.Client.Apply, the director's
// reconciliation of a configuration differing by that weight, and one
// ipvsadm -e for comparison.
func BenchmarkWeightChange(b *testing.B) {
	const n = 10000
	ops, _ := bulkTable(n)
	h, c := benchHost(b, "weight")
	buildTable(b, c, ops)
	tmp := b.TempDir()
	state := filepath.Join(tmp, "state")
	same := writeFile(b, tmp, "same.yaml", directorYAML(ops, state, false))
	bumped := writeFile(b, tmp, "bumped.yaml", directorYAML(ops, state, true))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// One op through the client.
	lastSvc := ops[len(ops)-benchReal-1].Service
	d := ops[len(ops)-benchReal].Dest
	d.Weight = 77
	start := time.Now()
	if err := c.Apply(ctx, []ipvs.Op{{Kind: ipvs.EditDest, Service: lastSvc, Dest: d}}); err != nil {
		b.Fatal(err)
	}
	apply := time.Since(start)
	if w := destWeight(b, h, lastSvc, d.DestKey); w != 77 {
		b.Fatalf("weight in the kernel is %d, want 77", w)
	}

	// The director: adopt the table, then reconcile a config differing by
	// one weight (99 for the same real server).
	cfg1, _, err := director.LoadConfig(same)
	if err != nil {
		b.Fatal(err)
	}
	cfg2, _, err := director.LoadConfig(bumped)
	if err != nil {
		b.Fatal(err)
	}
	eng := director.NewEngine(state, director.Deps{Kernel: c})
	if _, err := eng.Apply(ctx, cfg1); err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	done, err := eng.Apply(ctx, cfg2)
	reconcile := time.Since(start)
	if err != nil || len(done) != 1 || done[0].Kind != ipvs.EditDest || done[0].Dest.Weight != 99 {
		b.Fatalf("reconcile of one weight made %v: %v", done, err)
	}
	if w := destWeight(b, h, lastSvc, d.DestKey); w != 99 {
		b.Fatalf("weight in the kernel is %d, want 99", w)
	}

	// The input setters: load feedback halves the weight, then a failed
	// health check takes it to 0. Each is one netlink operation.
	ref := director.ServerRef{Service: fmt.Sprintf("s%d", n-1), Addr: d.Addr, Port: d.Port}
	start = time.Now()
	done, err = eng.SetFeedback(ctx, map[director.ServerRef]*director.Feedback{ref: {Capacity: 0.5}})
	feedback := time.Since(start)
	if err != nil || len(done) != 1 || done[0].Dest.Weight != 50 {
		b.Fatalf("feedback made %v: %v", done, err)
	}
	if w := destWeight(b, h, lastSvc, d.DestKey); w != 50 {
		b.Fatalf("weight in the kernel is %d, want 50", w)
	}
	start = time.Now()
	done, err = eng.SetHealth(ctx, map[director.ServerRef]director.Health{ref: {State: director.Down, Reason: "bench"}})
	health := time.Since(start)
	if err != nil || len(done) != 1 || done[0].Dest.Weight != 0 {
		b.Fatalf("health made %v: %v", done, err)
	}
	if w := destWeight(b, h, lastSvc, d.DestKey); w != 0 {
		b.Fatalf("weight in the kernel is %d, want 0", w)
	}

	edit, _ := timeCmd(b, h, "", "ipvsadm", "-e", "-t", netipPort(lastSvc), "-r", d.DestKey.String(), "-g", "-w", "55")
	if w := destWeight(b, h, lastSvc, d.DestKey); w != 55 {
		b.Fatalf("weight in the kernel is %d, want 55", w)
	}

	b.ReportMetric(float64(apply.Microseconds())/1000, "apply-ms")
	b.ReportMetric(float64(reconcile.Microseconds())/1000, "engine-reconcile-ms")
	b.ReportMetric(float64(edit.Microseconds())/1000, "ipvsadm-e-ms")
	b.ReportMetric(float64(feedback.Microseconds())/1000, "set-feedback-ms")
	b.ReportMetric(float64(health.Microseconds())/1000, "set-health-ms")
	fmt.Printf("\nOne weight change in %d services x %d real servers:\n", n, benchReal)
	fmt.Printf("  %-44s %10.1f ms\n", "ipvs.Client.Apply of one EditDest", float64(apply.Microseconds())/1000)
	fmt.Printf("  %-44s %10.1f ms\n", "director.Engine.Apply (parsed config)", float64(reconcile.Microseconds())/1000)
	fmt.Printf("  %-44s %10.1f ms\n", "director.Engine.SetFeedback (one server)", float64(feedback.Microseconds())/1000)
	fmt.Printf("  %-44s %10.1f ms\n", "director.Engine.SetHealth (one server)", float64(health.Microseconds())/1000)
	fmt.Printf("  %-44s %10.1f ms\n", "ipvsadm -e (one process)", float64(edit.Microseconds())/1000)
}

func netipPort(s ipvs.Service) string { return fmt.Sprintf("%s:%d", s.Addr, s.Port) }

// destWeight reads the weight of real server d of svc with moby/ipvs, an
// independent reader, in one small dump.
func destWeight(b *testing.B, h *topo.Host, svc ipvs.Service, d ipvs.DestKey) int {
	b.Helper()
	var ds []*mobyipvs.Destination
	err := h.Do(func() error {
		mh, err := mobyipvs.New("")
		if err != nil {
			return err
		}
		defer mh.Close()
		ds, err = mh.GetDestinations(&mobyipvs.Service{AddressFamily: af4, Protocol: uint16(svc.Protocol), Address: net.IP(svc.Addr.AsSlice()), Port: svc.Port})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, x := range ds {
		if x.Address.Equal(net.IP(d.Addr.AsSlice())) && x.Port == d.Port {
			return x.Weight
		}
	}
	b.Fatalf("%s has no real server %s", svc.ServiceKey, d)
	return 0
}

// includedYAML renders the services of ops as files of per services
// each, to be included by a director.yaml: the file names and their
// text. When bump is true, the first real server of the last service
// gets weight 99 (in the last file).
func includedYAML(ops []ipvs.Op, per int, bump bool) ([]string, []string) {
	var names, texts []string
	groups := benchServices(ops)
	for f := 0; f*per < len(groups); f++ {
		var s strings.Builder
		writeServices(&s, groups, f*per, min((f+1)*per, len(groups)), "", bump)
		names = append(names, fmt.Sprintf("%03d.yaml", f))
		texts = append(texts, s.String())
	}
	return names, texts
}

// daemonFigures are what BenchmarkDirectorDaemon measures of one daemon.
type daemonFigures struct {
	programmed time.Duration // start until the kernel holds the table
	rss, hwm   float64       // MB: VmRSS 3 s after, VmHWM
	reload     time.Duration // one weight: edit, reload --socket, until the kernel has it
}

// runDaemon starts lvs-node director on the 10,000-service table of ops,
// laid out in one file (files == 1) or in files included files, measures
// it, and edits one weight through reload --socket.
func runDaemon(b *testing.B, ops []ipvs.Op, files int) daemonFigures {
	const n = 10000
	h, _ := benchHost(b, fmt.Sprintf("daemon%d", files))
	tmp := b.TempDir()
	state := filepath.Join(tmp, "state")
	sock := filepath.Join(tmp, "director.sock")
	withSock := func(y string) string {
		return strings.Replace(y, "control: \"\"", "control: "+sock, 1)
	}
	var cfg string
	var names, bumped []string
	if files == 1 {
		cfg = writeFile(b, tmp, "director.yaml", withSock(directorYAML(ops, state, false)))
	} else {
		dir := filepath.Join(tmp, "services.d")
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		var texts []string
		names, texts = includedYAML(ops, n/files, false)
		_, bumped = includedYAML(ops, n/files, true)
		for i := range names {
			writeFile(b, dir, names[i], texts[i])
		}
		cfg = writeFile(b, tmp, "director.yaml", withSock(directorYAML(nil, state, false))+"include: [services.d/*.yaml]\n")
	}
	// The files were written before the daemon starts, as an operator's
	// would be: their times are older than the reload's edit.
	time.Sleep(2500 * time.Millisecond)
	// The daemon tells the service manager it is ready (sd_notify
	// READY=1) once the kernel holds the table; reading /proc/net/ip_vs
	// over and over instead would take the CPU it needs.
	notify := sdnotifytest.Listen(b)
	start := time.Now()
	p := h.Start(b, "lvs-node", "director", "--log-level", "warn", "--config", cfg)
	for {
		if m, ok := notify.Next(time.Second); ok && strings.Contains(m, "READY=1") {
			break
		}
		if p.Exited() {
			b.Fatalf("director exited: %v\n%s", p.Wait(0), tail(p.Output(), 3000))
		}
		if time.Since(start) > 20*time.Minute {
			b.Fatal("the director did not program the table")
		}
	}
	var f daemonFigures
	f.programmed = time.Since(start)
	mustHold(b, h, "lvs-node director", n)
	time.Sleep(3 * time.Second) // let it settle after handing memory back
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		b.Fatal(err)
	}
	field := func(name string) float64 {
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == name+":" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1000
			}
		}
		b.Fatalf("no %s in the director's status:\n%s", name, status)
		return 0
	}
	if !strings.Contains(string(status), "Name:\tlvs-node") {
		b.Fatalf("pid %d is not lvs-node:\n%s", p.Pid(), status)
	}
	f.rss, f.hwm = field("VmRSS"), field("VmHWM")

	lastSvc := ops[len(ops)-benchReal-1].Service
	d := ops[len(ops)-benchReal].Dest
	if files == 1 {
		writeFile(b, tmp, "director.yaml", withSock(directorYAML(ops, state, true)))
	} else {
		last := len(names) - 1
		writeFile(b, filepath.Join(tmp, "services.d"), names[last], bumped[last])
	}
	start = time.Now()
	h.MustRun(b, "lvs-node", "director", "reload", "--socket", sock)
	f.reload = time.Since(start)
	if w := destWeight(b, h, lastSvc, d.DestKey); w != 99 {
		b.Fatalf("weight after reload is %d, want 99", w)
	}
	if err := p.Stop(2 * time.Minute); err != nil && !p.Exited() {
		b.Fatalf("stop the director: %v", err)
	}
	flush(b, h) // before the next namespace fills its table
	return f
}

// BenchmarkDirectorDaemon runs the lvs-node director daemon on 10,000
// services x 10 real servers, first split into 100 included files of 100
// services, then in one file: how long it takes from start until the
// kernel holds the table, its resident memory once it holds it (VmRSS)
// and at its peak (VmHWM), and one weight change end to end through the
// operator's path: edit a file, `lvs-node director reload --socket`,
// until the kernel has the new weight. With included files the daemon
// reads again only the file that changed; with one file, all of it (with
// --config instead of --socket the command validates the files itself
// first).
func BenchmarkDirectorDaemon(b *testing.B) {
	ops, _ := bulkTable(10000)
	inc := runDaemon(b, ops, 100)
	one := runDaemon(b, ops, 1)
	b.ReportMetric(inc.programmed.Seconds(), "program-s")
	b.ReportMetric(inc.rss, "rss-MB")
	b.ReportMetric(inc.hwm, "peak-rss-MB")
	b.ReportMetric(float64(inc.reload.Microseconds())/1000, "reload-ms")
	b.ReportMetric(one.programmed.Seconds(), "one-file-program-s")
	b.ReportMetric(one.hwm, "one-file-peak-rss-MB")
	b.ReportMetric(float64(one.reload.Microseconds())/1000, "one-file-reload-ms")
	fmt.Printf("\nlvs-node director daemon with 10000 services x %d real servers:\n", benchReal)
	fmt.Printf("  %-56s %14s %14s\n", "", "100 included", "one file")
	fmt.Printf("  %-56s %12.3f s %12.3f s\n", "start until the kernel holds the table", inc.programmed.Seconds(), one.programmed.Seconds())
	fmt.Printf("  %-56s %11.1f MB %11.1f MB\n", "resident memory holding it (VmRSS)", inc.rss, one.rss)
	fmt.Printf("  %-56s %11.1f MB %11.1f MB\n", "peak resident memory (VmHWM)", inc.hwm, one.hwm)
	fmt.Printf("  %-56s %11.1f ms %11.1f ms\n", "one weight change: edit + director reload --socket", float64(inc.reload.Microseconds())/1000, float64(one.reload.Microseconds())/1000)
}

// BenchmarkPeakMemory measures the peak resident memory of this process
// while it programs 10,000 services x 10 real servers and reads them
// back (VmHWM, reset first through /proc/self/clear_refs).
func BenchmarkPeakMemory(b *testing.B) {
	const n = 10000
	h, c := benchHost(b, "memory")
	runtime.GC()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset the peak RSS: %v", err)
	}
	before := vmKB(b, "VmHWM")
	ops, _ := bulkTable(n)
	buildTable(b, c, ops)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tab, err := c.Table(ctx)
	if err != nil || len(tab.Services) != n {
		b.Fatalf("Table: %v", err)
	}
	peak := vmKB(b, "VmHWM")
	runtime.KeepAlive(tab)
	runtime.KeepAlive(ops)
	mustHold(b, h, "Client.Apply", n)
	b.ReportMetric(float64(peak)/1000, "peak-MB")
	b.ReportMetric(float64(peak-before)/1000, "growth-MB")
	fmt.Printf("\nPeak RSS of the benchmark process building and reading %d services x %d real servers:\n", n, benchReal)
	fmt.Printf("  VmHWM %.1f MB (%.1f MB at the start, so %.1f MB for the work)\n", float64(peak)/1000, float64(before)/1000, float64(peak-before)/1000)
}

// vmKB reads a field of /proc/self/status in kB.
func vmKB(b *testing.B, field string) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
