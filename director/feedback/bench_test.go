package feedback

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
	"github.com/lvs-node/lvs-node/rsagent/agentserver"
)

type nullSink struct{}

func (nullSink) FeedbackChanged(context.Context, []Update[int]) {}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkPoll10000Agents polls 10,000 agents (lvs-node's agent server on
// 127.0.0.1, in this process) every 2s for 10s and reports the CPU used
// (poller and agents together, an upper bound for the poller) and the
// poller's heap, per 1,000 agents.
func BenchmarkPoll10000Agents(b *testing.B) {
	const agents = 10000
	const window = 10 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	capacity := 60.0
	srv, err := agentserver.New(agentserver.Options{Report: func() agentserver.Report {
		return agentserver.Report{Capacity: &capacity, Admin: agentcheck.AdminReady}
	}})
	if err != nil {
		b.Fatal(err)
	}
	targets := make([]Target[int], 0, agents)
	sp := Defaults()
	for i := range agents {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatalf("listener %d: %v", i, err)
		}
		go func() { _ = srv.Serve(ctx, ln) }()
		targets = append(targets, Target[int]{Key: i, Agent: netip.MustParseAddrPort(ln.Addr().String()), Weight: 100, Spec: sp})
	}
	for range b.N {
		before := heapInuse()
		p, err := NewPoller(targets, nullSink{}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		pctx, pcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = p.Run(pctx); close(done) }()
		time.Sleep(2 * time.Second) // one full round first
		answered0, cpu0, t0 := srv.Stats().Answered, cpuTime(), time.Now()
		time.Sleep(window)
		cpu, wall, polls := cpuTime()-cpu0, time.Since(t0), srv.Stats().Answered-answered0
		heap := heapInuse() - before
		pcancel()
		<-done
		cores := cpu.Seconds() / wall.Seconds()
		b.ReportMetric(cores/agents*1000, "cpu-cores/1000-agents")
		b.ReportMetric(float64(heap)/agents*1000/(1<<20), "heap-MiB/1000-agents")
		b.ReportMetric(float64(polls)/wall.Seconds(), "polls/s")
		b.Logf("%d agents at 2s: %.0f polls/s, %.2f cores (poller and agents in one process), poller heap %.1f MiB",
			agents, float64(polls)/wall.Seconds(), cores, float64(heap)/(1<<20))
		runtime.KeepAlive(p)
	}
}
