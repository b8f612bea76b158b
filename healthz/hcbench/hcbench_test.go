package hcbench

import (
	"os"
	"testing"
	"time"
)

func TestDownTimes(t *testing.T) {
	killed := map[string]bool{"127.1.0.1:20000": true, "127.1.0.2:20000": true, "127.1.0.3:20000": true}
	out := "READY\n" +
		"T 127.1.0.1:20000 down 1000\n" + // down, then up again: not down now
		"T 127.1.0.1:20000 up 2000\n" +
		"T 127.1.0.2:20000 down 3000\n" +
		"T 127.1.0.2:20000 down 3500\n" + // the first report counts
		"T 127.1.0.9:20000 down 4000\n" + // not killed
		"T 127.1.0.1:20000 down 5000\n"
	got := DownTimes(out, killed)
	if len(got) != 2 || !got["127.1.0.1:20000"].Equal(time.Unix(0, 5000)) || !got["127.1.0.2:20000"].Equal(time.Unix(0, 3000)) {
		t.Errorf("DownTimes = %v", got)
	}
}

func TestQuantile(t *testing.T) {
	var r Result
	for i := 100; i >= 1; i-- {
		r.Detect = append(r.Detect, time.Duration(i)*time.Millisecond)
	}
	if p := r.P(0.99); p != 99*time.Millisecond {
		t.Errorf("p99 of 1..100 ms = %s", p)
	}
	if p := r.P(0.5); p != 50*time.Millisecond {
		t.Errorf("p50 of 1..100 ms = %s", p)
	}
	if (Result{}).P(0.99) != 0 {
		t.Error("quantile of nothing")
	}
}

func TestProcReaders(t *testing.T) {
	if _, err := PassiveOpens(os.Getpid()); err != nil {
		t.Error(err)
	}
	cpu, rss, err := ProcStat(os.Getpid())
	if err != nil || cpu < 0 || rss <= 0 {
		t.Errorf("ProcStat = %v, %v, %v", cpu, rss, err)
	}
	if busy, err := machineCPU(); err != nil || busy <= 0 {
		t.Errorf("machineCPU = %v, %v", busy, err)
	}
}
