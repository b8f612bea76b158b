//go:build e2e

package e2e

// The health-check benchmark: lvs-node's checker (the healthz package)
// and keepalived's checker run the same TCP and HTTP checks of the same
// local listeners, one after the other in one VM run. keepalived's
// checker needs IPVS (it exits at start without it), so both run in the
// lab VM. See docs/benchmarks.md.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mobyipvs "github.com/moby/ipvs"

	"github.com/lvs-node/lvs-node/healthz"
	"github.com/lvs-node/lvs-node/healthz/hcbench"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/lab/topo"
)

// hcChildArg makes the test binary run as the benchmark's checker process
// (see init): `e2e.test healthz-bench-checker CONFIG`.
const hcChildArg = "healthz-bench-checker"

func init() {
	if len(os.Args) == 3 && os.Args[1] == hcChildArg {
		if err := hcbench.Checker(os.Args[2], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

const (
	hcWarmup    = 5 * time.Second
	hcWindow    = 20 * time.Second
	hcTCPBase   = 20000
	hcHTTPBase  = 21000
	hcKillPorts = 2 // listeners stopped for the detection latency: 200 targets
	hcLimit     = 20 * time.Second
)

// runHealthz runs the healthz checker process over the targets in h.
func runHealthz(b *testing.B, h *topo.Host, t *hcbench.Targets, dir string) hcbench.Result {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(dir, "healthz-"+t.Type+".json")
	if err := t.WriteConfig(cfg); err != nil {
		b.Fatal(err)
	}
	p := h.Start(b, self, hcChildArg, cfg)
	defer p.Stop(10 * time.Second)
	if !p.WaitOutput(hcbench.Ready, time.Minute) {
		b.Fatalf("the healthz checker did not start:\n%s", tail(p.Output(), 3000))
	}
	r, err := t.Steady(func() []int { return []int{p.Pid()} }, hcWarmup, hcWindow)
	if err != nil {
		b.Fatal(err)
	}
	r.Detect, err = t.Detect(t.Ports[:hcKillPorts], hcLimit, func(killed map[string]bool) map[string]time.Time {
		return hcbench.DownTimes(p.Output(), killed)
	})
	if err != nil {
		b.Fatalf("healthz: %v", err)
	}
	return r
}

// keepalivedChecks renders the targets as keepalived virtual servers (one
// per listener port) with the same checks: inhibit_on_failure keeps a
// failed real server with weight 0, and retry fall-1 with a
// delay_before_retry of one interval makes fall failures in a row.
func keepalivedChecks(t *hcbench.Targets) string {
	var s strings.Builder
	s.WriteString("global_defs {\n    router_id hcbench\n}\n")
	for _, p := range t.Ports {
		fmt.Fprintf(&s, "virtual_server %s %d {\n    delay_loop %g\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n", hcbench.VIP, p, hcbench.Interval.Seconds())
		for _, a := range hcbench.PortAddrs(p) {
			host, _, _ := net.SplitHostPort(a)
			fmt.Fprintf(&s, "    real_server %s %d {\n        weight 1\n        inhibit_on_failure\n", host, p)
			check := "TCP_CHECK {\n"
			if t.Type == healthz.TypeHTTP {
				check = "HTTP_GET {\n            url {\n                path " + hcbench.Path + "\n                status_code 200\n            }\n"
			}
			fmt.Fprintf(&s, "        %s            connect_timeout %g\n            retry %d\n            delay_before_retry %g\n        }\n    }\n",
				check, hcbench.Timeout.Seconds(), hcbench.Fall-1, hcbench.Interval.Seconds())
		}
		s.WriteString("}\n")
	}
	return s.String()
}

// runKeepalived runs keepalived's checker over the targets in h. A failed
// real server shows as weight 0 in the kernel's table, read with
// moby/ipvs.
func runKeepalived(b *testing.B, h *topo.Host, t *hcbench.Targets, dir string) hcbench.Result {
	b.Helper()
	cf := writeFile(b, dir, "keepalived-"+t.Type+".conf", keepalivedChecks(t))
	pidf, chkf := filepath.Join(dir, "keepalived.pid"), filepath.Join(dir, "checkers.pid")
	os.Remove(chkf)
	p := h.Start(b, "keepalived", "-n", "-C", "-f", cf, "-p", pidf, "-c", chkf, "-r", filepath.Join(dir, "vrrp.pid"))
	defer func() {
		if err := p.Stop(time.Minute); err != nil && !p.Exited() {
			b.Errorf("stop keepalived: %v", err)
		}
		flush(b, h)
	}()
	n := len(t.Ports) * hcbench.PerPort
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if s, d, err := procCount(h); err == nil && s == len(t.Ports) && d == n {
			break
		}
		if p.Exited() || time.Now().After(deadline) {
			b.Fatalf("keepalived did not program its %d real servers: %v\n%s", n, p.Wait(0), tail(p.Output(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	checker := 0
	for checker == 0 && time.Now().Before(deadline) {
		if data, err := os.ReadFile(chkf); err == nil {
			checker, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The parent and its checker child, which runs the checks.
	r, err := t.Steady(func() []int { return []int{p.Pid(), checker} }, hcWarmup, hcWindow)
	if err != nil {
		b.Fatal(err)
	}
	mh := ipvsHandle(b, h)
	defer mh.Close()
	first := map[string]time.Time{} // when each real server was first seen at weight 0
	r.Detect, err = t.Detect(t.Ports[:hcKillPorts], hcLimit, func(killed map[string]bool) map[string]time.Time {
		now := time.Now()
		for _, port := range t.Ports[:hcKillPorts] {
			ds, err := mh.GetDestinations(&mobyipvs.Service{AddressFamily: af4, Protocol: uint16(ipvs.TCP), Address: net.ParseIP(hcbench.VIP), Port: port})
			if err != nil {
				b.Fatal(err)
			}
			for _, d := range ds {
				k := net.JoinHostPort(d.Address.String(), strconv.Itoa(int(d.Port)))
				switch _, ok := first[k]; {
				case d.Weight != 0:
					delete(first, k)
				case !ok:
					first[k] = now
				}
			}
		}
		down := map[string]time.Time{}
		for k, at := range first {
			if killed[k] {
				down[k] = at
			}
		}
		return down
	})
	if err != nil {
		b.Fatalf("keepalived: %v", err)
	}
	return r
}

// ipvsHandle opens a moby/ipvs handle (an independent reader of the
// table) in the namespace of h.
func ipvsHandle(b *testing.B, h *topo.Host) *mobyipvs.Handle {
	b.Helper()
	var mh *mobyipvs.Handle
	if err := h.Do(func() error {
		var err error
		mh, err = mobyipvs.New("")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return mh
}

func hcRate(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkHealthChecks runs the same TCP checks (LVS_HC_TCP_RATE checks
// a second, 400 by default) and HTTP checks (LVS_HC_HTTP_RATE, 200) with
// lvs-node's checker and with keepalived's, one after the other against
// the same listeners in a namespace of the VM: targets = rate x interval
// (1 s), 100 target addresses per listener port. The rates are what the
// emulated VM sustains with the listeners in it. For each: checks a
// second (connections the kernel completed), CPU per 1,000 checks a
// second of the contender and of the whole VM, resident memory, and the time
// from stopping two listeners (200 targets) until each target is
// reported down (healthz: delivered to its sink; keepalived: weight 0 in
// the kernel).
func BenchmarkHealthChecks(b *testing.B) {
	modprobe(b, "ip_vs", "ip_vs_rr")
	for _, c := range []struct {
		typ  string
		base uint16
		rate int
	}{
		{healthz.TypeTCP, hcTCPBase, hcRate("LVS_HC_TCP_RATE", 400)},
		{healthz.TypeHTTP, hcHTTPBase, hcRate("LVS_HC_HTTP_RATE", 200)},
	} {
		b.Run(c.typ, func(b *testing.B) {
			h := topo.New(b).Host("hc")
			t, err := hcbench.NewTargets(c.typ, c.base, c.rate, func(addr string) (net.Listener, error) { return h.Listen("tcp", addr) })
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(t.CloseAll)
			// Rounds taking turns (healthz first, then keepalived first),
			// each contender alone with the listeners: the median of the
			// rounds' ratios is steadier on a noisy host than one pair.
			var hz, ka hcbench.Result
			var ratios, sysRatios []float64
			for i := range hcRate("LVS_HC_ROUNDS", 3) {
				dir := b.TempDir()
				var h1, k1 hcbench.Result
				if i%2 == 0 {
					h1 = runHealthz(b, h, t, dir)
					k1 = runKeepalived(b, h, t, dir)
				} else {
					k1 = runKeepalived(b, h, t, dir)
					h1 = runHealthz(b, h, t, dir)
				}
				ratios = append(ratios, h1.CPUPer1k()/k1.CPUPer1k())
				sysRatios = append(sysRatios, h1.SysCPUPer1k()/k1.SysCPUPer1k())
				if i == 0 {
					hz, ka = h1, k1
				}
			}

			hcbench.Table(os.Stdout, fmt.Sprintf("VM: %s checks of %d targets (%d listener ports x %d addresses), interval %s, timeout %s, fall %d:",
				strings.ToUpper(c.typ), len(t.Addrs()), len(t.Ports), hcbench.PerPort, hcbench.Interval, hcbench.Timeout, hcbench.Fall),
				hcbench.Row{Name: "lvs-node healthz", R: hz}, hcbench.Row{Name: "keepalived -C", R: ka})
			fmt.Printf("  CPU per 1k checks/s, healthz / keepalived, round by round: %s (whole machine: %s)\n", fmtRatios(ratios), fmtRatios(sysRatios))
			fmt.Printf("  median: %.2f (whole machine: %.2f); the table is the first round; detection bound fall x interval + timeout + 100ms = %s\n",
				median(ratios), median(sysRatios), hcbench.Bound())
			b.ReportMetric(median(ratios), "healthz/keepalived-cpu-median")
			b.ReportMetric(hz.Rate, "healthz-checks/s")
			b.ReportMetric(ka.Rate, "keepalived-checks/s")
			b.ReportMetric(hz.CPUPer1k(), "healthz-cpu-s/s-per-1k")
			b.ReportMetric(ka.CPUPer1k(), "keepalived-cpu-s/s-per-1k")
			b.ReportMetric(hz.SysCPUPer1k(), "healthz-machine-cpu-s/s-per-1k")
			b.ReportMetric(ka.SysCPUPer1k(), "keepalived-machine-cpu-s/s-per-1k")
			b.ReportMetric(hz.RSSMB, "healthz-rss-MB")
			b.ReportMetric(ka.RSSMB, "keepalived-rss-MB")
			b.ReportMetric(float64(hz.P(0.99).Milliseconds()), "healthz-detect-p99-ms")
			b.ReportMetric(float64(ka.P(0.99).Milliseconds()), "keepalived-detect-p99-ms")
			if err := hcbench.CheckBound(hz); err != nil {
				b.Errorf("healthz: %v", err)
			}
		})
	}
}

// median returns the median of xs (the mean of the middle two for an even
// count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func fmtRatios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(parts, " ")
}
