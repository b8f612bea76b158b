package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/procfs"
)

// DefaultProcRoot is where /proc is read.
const DefaultProcRoot = "/proc"

func openProc(root string) (procfs.FS, error) {
	if root == "" {
		root = DefaultProcRoot
	}
	fs, err := procfs.NewFS(root)
	if err != nil {
		return procfs.FS{}, fmt.Errorf("proc root %s: %w", root, err)
	}
	return fs, nil
}

// CPU is the cpu source: 100 - utilisation between two readings.
type CPU struct {
	fs procfs.FS
	// Warmup is how long the first reading waits for a second sample.
	Warmup time.Duration

	mu   sync.Mutex
	prev *procfs.CPUStat
}

// NewCPU reads <root>/stat.
func NewCPU(root string) (*CPU, error) {
	fs, err := openProc(root)
	if err != nil {
		return nil, err
	}
	return &CPU{fs: fs, Warmup: 250 * time.Millisecond}, nil
}

func (c *CPU) sample() (procfs.CPUStat, error) {
	st, err := c.fs.Stat()
	if err != nil {
		return procfs.CPUStat{}, fmt.Errorf("cpu: %w", err)
	}
	return st.CPUTotal, nil
}

// ErrNoTime: no CPU time passed between two readings.
var ErrNoTime = errors.New("cpu: no CPU time passed since the previous reading")

// Read implements Source.
func (c *CPU) Read(ctx context.Context) (Reading, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prev == nil {
		first, err := c.sample()
		if err != nil {
			return Reading{}, err
		}
		c.prev = &first
		t := time.NewTimer(c.Warmup)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return Reading{}, ctx.Err()
		case <-t.C:
		}
	}
	cur, err := c.sample()
	if err != nil {
		return Reading{}, err
	}
	prev := *c.prev
	c.prev = &cur
	free := (cur.Idle - prev.Idle) + (cur.Iowait - prev.Iowait)
	total := free + (cur.User - prev.User) + (cur.Nice - prev.Nice) + (cur.System - prev.System) +
		(cur.IRQ - prev.IRQ) + (cur.SoftIRQ - prev.SoftIRQ) + (cur.Steal - prev.Steal)
	if total <= 0 {
		return Reading{}, ErrNoTime
	}
	return capacity(100 * free / total), nil
}

// Loadavg is the loadavg source.
type Loadavg struct {
	fs         procfs.FS
	maxPerCore float64
}

// NewLoadavg reads <root>/loadavg and counts CPUs in <root>/stat.
func NewLoadavg(root string, maxPerCore float64) (*Loadavg, error) {
	if !(maxPerCore > 0) {
		return nil, fmt.Errorf("loadavg: max_per_core must be above 0, got %v", maxPerCore)
	}
	fs, err := openProc(root)
	if err != nil {
		return nil, err
	}
	return &Loadavg{fs: fs, maxPerCore: maxPerCore}, nil
}

// Read implements Source.
func (l *Loadavg) Read(context.Context) (Reading, error) {
	la, err := l.fs.LoadAvg()
	if err != nil {
		return Reading{}, fmt.Errorf("loadavg: %w", err)
	}
	st, err := l.fs.Stat()
	if err != nil {
		return Reading{}, fmt.Errorf("loadavg: count CPUs: %w", err)
	}
	cpus := len(st.CPU)
	if cpus == 0 {
		return Reading{}, errors.New("loadavg: no CPU listed in stat")
	}
	return capacity(100 * (1 - la.Load1/(l.maxPerCore*float64(cpus)))), nil
}

// PSI is the psi source.
type PSI struct {
	fs       procfs.FS
	resource string
	max      float64
}

// NewPSI reads <root>/pressure/<resource> (cpu, memory or io); max is the
// avg10 "some" percentage that means no capacity left.
func NewPSI(root, resource string, max float64) (*PSI, error) {
	switch resource {
	case "cpu", "memory", "io":
	default:
		return nil, fmt.Errorf("psi: want resource cpu, memory or io, got %q", resource)
	}
	if !(max > 0 && max <= 100) {
		return nil, fmt.Errorf("psi: max must be above 0 and at most 100, got %v", max)
	}
	fs, err := openProc(root)
	if err != nil {
		return nil, err
	}
	return &PSI{fs: fs, resource: resource, max: max}, nil
}

// Read implements Source.
func (p *PSI) Read(context.Context) (Reading, error) {
	st, err := p.fs.PSIStatsForResource(p.resource)
	if err != nil {
		return Reading{}, fmt.Errorf("psi %s: %w", p.resource, err)
	}
	if st.Some == nil {
		return Reading{}, fmt.Errorf("psi %s: no \"some\" line", p.resource)
	}
	return capacity(100 * (1 - st.Some.Avg10/p.max)), nil
}
