package toa_test

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/lvs-node/lvs-node/toa"
	"github.com/lvs-node/lvs-node/toa/format"
	"github.com/lvs-node/lvs-node/toa/internal/rsprog"
	"github.com/lvs-node/lvs-node/toa/toatest"
)

// BenchmarkTOAConnections measures connections per second over loopback
// in a lab (connect from a trusted balancer whose packets carry a TOA,
// accept, getpeername, close) with eBPF TOA attached and without, in
// alternating rounds of one run, and the socket memory the kernel charges
// for a tracked connection. eBPF TOA is attached to the lab's server
// cgroup, which holds the server's sockets and not the balancer's, as on
// a real server. Run by make bench (make bench-toa).
func BenchmarkTOAConnections(b *testing.B) {
	lab, env := benchLab(b)
	const rounds, perRound = 40, 1000
	conn := toa.Conn{Listen: toa.ListenIPv4, Server: srv, Balancer: bal}
	var with, without time.Duration
	var memWith, memWithout uint32
	pairs := make([]float64, 0, rounds)
	for r := range rounds {
		var pair [2]time.Duration // with, without
		for i := range 2 {
			attached := (r+i)%2 == 0
			if attached {
				if _, err := toa.Attach(toa.Config{Cgroup: lab.Server, Trusted: trust}, toa.Options{PinDir: env.PinDir}); err != nil {
					b.Fatal(err)
				}
			} else if _, err := toa.Detach(toa.Options{PinDir: env.PinDir}); err != nil {
				b.Fatal(err)
			}
			d, mem, rev, err := lab.Churn(conn, perRound, client)
			if err != nil {
				b.Fatal(err)
			}
			if attached {
				with += d
				pair[0] = d
				memWith = mem
				if rev != perRound {
					b.Fatalf("%d of %d connections revealed with TOA attached", rev, perRound)
				}
			} else {
				without += d
				pair[1] = d
				memWithout = mem
				if rev != 0 {
					b.Fatalf("%d connections revealed without TOA", rev)
				}
			}
		}
		pairs = append(pairs, (pair[0].Seconds()/pair[1].Seconds()-1)*100)
	}
	// Memory: a slot of the preallocated array (charged once, at
	// attach) for a connection that has one, socket storage (charged to
	// the socket, SK_MEMINFO_OPTMEM) for one whose slot is taken.
	if _, err := toa.Attach(toa.Config{Cgroup: lab.Server, Trusted: trust}, toa.Options{PinDir: env.PinDir}); err != nil {
		b.Fatal(err)
	}
	slots, err := ebpf.LoadPinnedMap(filepath.Join(env.PinDir, rsprog.MapSlots), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer slots.Close()
	slotBytes := slots.ValueSize()
	fill(b, slots, rsprog.Slot{Cookie: 1 << 63})
	_, memStorage, rev, err := lab.Churn(conn, 100, client)
	if err != nil || rev != 100 {
		b.Fatalf("%d of 100 revealed with every slot taken: %v", rev, err)
	}
	n := float64(rounds * perRound)
	cpsWith, cpsWithout := n/with.Seconds(), n/without.Seconds()
	overhead := (cpsWithout/cpsWith - 1) * 100
	slices.Sort(pairs)
	median := (pairs[len(pairs)/2-1] + pairs[len(pairs)/2]) / 2
	b.ReportMetric(cpsWithout, "conns/s-without")
	b.ReportMetric(cpsWith, "conns/s-with")
	b.ReportMetric(overhead, "overhead-%")
	b.ReportMetric(median, "median-pair-overhead-%")
	b.ReportMetric(float64(slotBytes), "bytes/tracked-conn-slot")
	b.ReportMetric(float64(memStorage)-float64(memWithout), "bytes/tracked-conn-storage")
	fmt.Printf("eBPF TOA: %.0f conns/s without, %.0f with (%+.1f%% time per connection; median of %d adjacent pairs of rounds %+.1f%%, quartiles %+.1f%% and %+.1f%%); memory per tracked connection: a %d-byte slot (%d slots, %.1f MiB preallocated), socket memory %d bytes with a slot, %d with socket storage (slots taken), %d without TOA\n",
		cpsWithout, cpsWith, overhead, len(pairs), median, pairs[len(pairs)/4], pairs[3*len(pairs)/4], slotBytes, toa.DefaultSlots, float64(slotBytes)*toa.DefaultSlots/(1<<20), memWith, memStorage, memWithout)
}

// BenchmarkTOAInterleaved measures the same connections with eBPF TOA
// attached once, the server taking turns between a listener in the
// server cgroup (with TOA) and one in a sibling cgroup (without), each
// connection timed on its own (Lab.ChurnPair): drift of the machine and
// the kernel's deferred work (the RCU frees of socket storage) fall on
// both alike, and the medians leave out the connections a busy machine
// interrupted. The mean counts half of the deferred work against TOA;
// the alternating rounds of BenchmarkTOAConnections count all of it.
func BenchmarkTOAInterleaved(b *testing.B) {
	lab, env := benchLab(b)
	if _, err := toa.Attach(toa.Config{Cgroup: lab.Server, Trusted: trust}, toa.Options{PinDir: env.PinDir}); err != nil {
		b.Fatal(err)
	}
	const rounds, perRound = 20, 2000
	conn := toa.Conn{Listen: toa.ListenIPv4, Server: srv, Balancer: bal}
	var with, without []time.Duration
	var rounded []float64 // per round, overhead of the medians
	for range rounds {
		w, wo, err := lab.ChurnPair(conn, perRound, client)
		if err != nil {
			b.Fatal(err)
		}
		if w.Revealed != perRound || wo.Revealed != 0 {
			b.Fatalf("revealed %d of %d with TOA, %d without", w.Revealed, perRound, wo.Revealed)
		}
		rounded = append(rounded, (median(w.Times)/median(wo.Times)-1)*100)
		with, without = append(with, w.Times...), append(without, wo.Times...)
	}
	byMean := (mean(with)/mean(without) - 1) * 100
	byMedian := (median(with)/median(without) - 1) * 100
	slices.Sort(rounded)
	b.ReportMetric(1e6/mean(without), "conns/s-without")
	b.ReportMetric(1e6/mean(with), "conns/s-with")
	b.ReportMetric(byMean, "overhead-mean-%")
	b.ReportMetric(byMedian, "overhead-median-%")
	fmt.Printf("eBPF TOA, interleaved: %.2f us a connection without, %.2f with (mean, %+.1f%%); medians %.2f and %.2f us (%+.1f%%); rounds' median overheads from %+.1f%% to %+.1f%% (median %+.1f%%)\n",
		mean(without), mean(with), byMean, median(without), median(with), byMedian, rounded[0], rounded[len(rounded)-1], rounded[len(rounded)/2])
}

// benchLab makes the benchmarks' lab (a server cgroup, the injector
// writing a 254/8 TOA into every handshake ACK), removed with eBPF TOA
// when the benchmark ends.
func benchLab(b *testing.B) (*toa.Lab, toatest.Env) {
	env := toatest.Env{PinDir: toatest.PinDir(b)}
	lab, err := toa.NewLab(toa.LabOptions{Addrs: []netip.Addr{bal, srv}, Server: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		toa.Detach(toa.Options{PinDir: env.PinDir})
		lab.Close()
	})
	opt, _ := format.Encode(format.K254, client)
	if err := lab.Inject(toa.InACK, opt); err != nil {
		b.Fatal(err)
	}
	return lab, env
}

// mean is the mean of ds in microseconds.
func mean(ds []time.Duration) float64 {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return float64(sum) / float64(len(ds)) / 1e3
}

// median is the median of ds in microseconds.
func median(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2]) / 1e3
}
