package load

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// fixed is a source with a set answer; block makes it ignore ctx until
// released (a read stuck in the kernel).
type fixed struct {
	r     Reading
	err   error
	block chan struct{}
}

func (f *fixed) Read(ctx context.Context) (Reading, error) {
	if f.block != nil {
		<-f.block
	}
	return f.r, f.err
}

func TestSamplerCombines(t *testing.T) {
	srcs := func() []Named {
		return []Named{
			{Name: "cpu", Type: "cpu", Source: &fixed{r: capacity(80)}, Timeout: time.Second},
			{Name: "psi", Type: "psi", Source: &fixed{r: capacity(40)}, Timeout: time.Second},
			{Name: "file", Type: "file", Source: &fixed{err: errors.New("no such file")}, Timeout: time.Second},
			{Name: "command", Type: "command", Source: &fixed{r: Reading{Health: agentcheck.HealthUp, Admin: agentcheck.AdminDrain}}, Timeout: time.Second},
		}
	}
	for combine, want := range map[Combine]float64{CombineMin: 40, CombineAverage: 60} {
		s, err := NewSampler(srcs(), combine, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		snap := s.Sample(context.Background())
		if snap.Capacity == nil || *snap.Capacity != want {
			t.Errorf("%s: capacity %v, want %v (the failing file skipped, not 0)", combine, snap.Capacity, want)
		}
		if snap.Admin != agentcheck.AdminDrain || snap.Health != agentcheck.HealthUp {
			t.Errorf("%s: admin %s health %s", combine, snap.Admin, snap.Health)
		}
		f := snap.Sources[2]
		if f.Capacity != nil || f.Errors != 1 || !strings.Contains(f.Error, "no such file") {
			t.Errorf("failing source: %+v", f)
		}
	}
	s, _ := NewSampler([]Named{{Name: "file", Source: &fixed{err: errors.New("x")}, Timeout: time.Second}}, "", time.Second)
	if snap := s.Sample(context.Background()); snap.Capacity != nil || snap.Combine != CombineMin {
		t.Errorf("all sources failing: capacity %v combine %s, want unknown and min", snap.Capacity, snap.Combine)
	}
	if _, err := NewSampler(nil, "median", time.Second); err == nil {
		t.Error("combine median accepted")
	}
}

func TestSamplerSkipsAStuckSource(t *testing.T) {
	stuck := &fixed{r: capacity(10), block: make(chan struct{})}
	s, err := NewSampler([]Named{
		{Name: "stuck", Source: stuck, Timeout: 100 * time.Millisecond},
		{Name: "cpu", Source: &fixed{r: capacity(70)}, Timeout: 100 * time.Millisecond},
	}, CombineMin, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		start := time.Now()
		snap := s.Sample(context.Background())
		if d := time.Since(start); d > time.Second {
			t.Fatalf("round %d took %s", round, d)
		}
		if snap.Capacity == nil || *snap.Capacity != 70 {
			t.Fatalf("round %d: capacity %v, want 70 (the stuck source skipped)", round, snap.Capacity)
		}
		if st := snap.Sources[0]; st.Timeouts != uint64(round) || !strings.HasPrefix(st.Error, "timeout") {
			t.Fatalf("round %d: stuck source %+v", round, st)
		}
	}
	close(stuck.block)
	time.Sleep(50 * time.Millisecond)
	if snap := s.Sample(context.Background()); *snap.Capacity != 10 {
		t.Errorf("released source: capacity %v, want 10", *snap.Capacity)
	}
	if got := s.Snapshot(); *got.Capacity != 10 || len(got.Sources) != 2 {
		t.Errorf("Snapshot() = %+v", got)
	}
}
