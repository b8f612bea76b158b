package healthz_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/healthz"
	"github.com/lvs-node/lvs-node/healthz/hcbench"
	"github.com/lvs-node/lvs-node/internal/kerneltest"
)

// checkerEnv makes the test binary run as the benchmark's checker process.
const checkerEnv = "LVS_HEALTHZ_BENCH_CHECKER"

func init() {
	if path := os.Getenv(checkerEnv); path != "" {
		if err := hcbench.Checker(path, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// BenchmarkCheckRate runs the healthz checker as a process of its own on
// the host, in a network namespace the benchmark creates, at the rates of
// the issue: 10,000 TCP and 2,000 HTTP checks a second against local
// listeners. It reports CPU per 1,000 checks a second, resident memory
// and the detection latency of 200 stopped targets. keepalived's checker
// cannot run here (the host kernel has no IPVS): the side-by-side
// comparison is BenchmarkHealthChecks in e2e, inside the lab VM.
func BenchmarkCheckRate(b *testing.B) {
	for _, c := range []struct {
		typ  string
		rate int
	}{{healthz.TypeTCP, 10000}, {healthz.TypeHTTP, 2000}} {
		b.Run(fmt.Sprintf("%s-%d", c.typ, c.rate), func(b *testing.B) {
			kerneltest.FreshNetns(b)
			kerneltest.LoopbackUp(b)
			t, err := hcbench.NewTargets(c.typ, 20000, c.rate, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(t.CloseAll)
			cfg := filepath.Join(b.TempDir(), "checks.json")
			if err := t.WriteConfig(cfg); err != nil {
				b.Fatal(err)
			}
			self, err := os.Executable()
			if err != nil {
				b.Fatal(err)
			}
			// Started from this goroutine, whose thread is in the namespace.
			cmd := exec.Command(self)
			cmd.Env = append(os.Environ(), checkerEnv+"="+cfg)
			out := &lockedBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			for deadline := time.Now().Add(time.Minute); !bytes.Contains([]byte(out.String()), []byte(hcbench.Ready)); {
				if time.Now().After(deadline) {
					b.Fatalf("the checker did not start: %s", out.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			r, err := t.Steady(func() []int { return []int{cmd.Process.Pid} }, 5*time.Second, 20*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			r.Detect, err = t.Detect(t.Ports[:2], 20*time.Second, func(killed map[string]bool) map[string]time.Time {
				return hcbench.DownTimes(out.String(), killed)
			})
			if err != nil {
				b.Fatal(err)
			}
			hcbench.Table(os.Stdout, fmt.Sprintf("host: %s checks of %d targets, interval %s, timeout %s, fall %d", c.typ, len(t.Addrs()), hcbench.Interval, hcbench.Timeout, hcbench.Fall),
				hcbench.Row{Name: "lvs-node healthz", R: r})
			b.ReportMetric(r.Rate, "checks/s")
			b.ReportMetric(r.CPUPer1k(), "cpu-s/s-per-1k")
			b.ReportMetric(r.RSSMB, "rss-MB")
			b.ReportMetric(float64(r.P(0.99).Milliseconds()), "detect-p99-ms")
			if err := hcbench.CheckBound(r); err != nil {
				b.Error(err)
			}
		})
	}
}
