//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// fnNATVIP is the plain NAT service of BenchmarkFullNAT: the same real
// servers and application as the full-NAT one.
const fnNATVIP = "198.51.100.101"

const fullNATBenchNAT = `  - name: web-nat
    vip: 198.51.100.101
    port: 80
    scheduler: rr
    bind_vip: true
    forwarding: nat
    real_servers:
      - {address: 10.1.0.11, port: 8080}
      - {address: 10.1.0.12, port: 8080}
`

// BenchmarkFullNAT measures new connections per second through a
// full-NAT service (IPVS NAT, source NAT to the local addresses, TOA
// written at egress, read by lvs-node realserver's eBPF TOA) against a
// plain NAT service to the same real servers and application, in one
// lab. Each connection is a connect, the application's first line (what
// accept() and getpeername() returned, checked to be the client's own
// address and port) and a close. The two services take turns in rounds
// so that the machine's noise falls on both alike.
func BenchmarkFullNAT(b *testing.B) {
	const (
		workers = 4
		rounds  = 4
		round   = 3 * time.Second
	)
	f := newFullNATLab(b)
	cfg, err := os.OpenFile(f.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cfg.WriteString(fullNATBenchNAT); err != nil {
		b.Fatal(err)
	}
	if err := cfg.Close(); err != nil {
		b.Fatal(err)
	}
	// Plain NAT needs the real servers to route the clients through
	// the director; full-NAT answers the local addresses anyway.
	for _, rs := range []*topo.Host{f.rs1, f.rs2} {
		rs.MustRun(b, "ip", "route", "add", "198.51.100.0/24", "via", "10.1.0.1")
	}
	f.client.MustRun(b, "ip", "route", "add", fnNATVIP+"/32", "via", "198.51.100.1")
	f.start(b)

	// run opens connections to vip from workers goroutines for d and
	// returns how many completed; any failure or a wrong address ends
	// the benchmark.
	run := func(vip string, d time.Duration) int64 {
		var n atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		stop := time.Now().Add(d)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					c, err := dialReport(f.client, "", vip)
					if err != nil {
						errs <- err
						return
					}
					c.c.Close()
					if c.Report.Accept != c.Local || c.Report.Getpeername != c.Local {
						errs <- fmt.Errorf("%s: the application saw accept() %s, getpeername() %s for the client %s",
							vip, c.Report.Accept, c.Report.Getpeername, c.Local)
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		return n.Load()
	}
	full, nat := fnVIP4+":80", fnNATVIP+":80"
	run(full, 500*time.Millisecond) // warm up both paths
	run(nat, 500*time.Millisecond)
	var nFull, nNAT int64
	var tFull, tNAT time.Duration
	for i := range rounds {
		order := []string{full, nat}
		if i%2 == 1 {
			order = []string{nat, full}
		}
		for _, vip := range order {
			start := time.Now()
			n := run(vip, round)
			if vip == full {
				nFull, tFull = nFull+n, tFull+time.Since(start)
			} else {
				nNAT, tNAT = nNAT+n, tNAT+time.Since(start)
			}
		}
	}
	cpsFull, cpsNAT := float64(nFull)/tFull.Seconds(), float64(nNAT)/tNAT.Seconds()
	b.ReportMetric(cpsFull, "fullnat-conn/s")
	b.ReportMetric(cpsNAT, "nat-conn/s")
	b.ReportMetric(cpsFull/cpsNAT, "fullnat/nat")
	fmt.Printf("\nnew connections per second, %d clients at once, %d rounds of %s each, taking turns:\n", workers, rounds, round)
	fmt.Printf("  %-52s %10.1f /s (%d)\n", "full-NAT (IPVS NAT + source NAT + TOA)", cpsFull, nFull)
	fmt.Printf("  %-52s %10.1f /s (%d)\n", "plain NAT", cpsNAT, nNAT)
	fmt.Printf("  %-52s %10.2f (%+.1f %%)\n", "full-NAT / NAT", cpsFull/cpsNAT, 100*(cpsFull/cpsNAT-1))
}
