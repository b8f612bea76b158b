package load

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

const fixtures = "testdata/proc"

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// copyProc copies the fixture tree so that a test can change a file.
func copyProc(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(fixtures, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(fixtures, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCPU(t *testing.T) {
	root := copyProc(t)
	c, err := NewCPU(root)
	if err != nil {
		t.Fatal(err)
	}
	c.Warmup = 0
	if _, err := c.Read(context.Background()); !errors.Is(err, ErrNoTime) {
		t.Fatalf("unchanged stat: %v, want ErrNoTime", err)
	}
	// user +600, system +300, idle +400, iowait +100: 500 of 1400 free.
	later := "cpu  1600 0 800 8400 600 0 0 0 0 0\ncpu0 1600 0 800 8400 600 0 0 0 0 0\n"
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte(later), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := c.Read(context.Background())
	if err != nil || !r.HasCapacity || !near(r.Capacity, 100*500.0/1400) {
		t.Fatalf("cpu = %+v, %v; want %.3f", r, err, 100*500.0/1400)
	}
	if err := os.Remove(filepath.Join(root, "stat")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(context.Background()); err == nil {
		t.Error("missing stat: no error")
	}
}

func TestLoadavg(t *testing.T) {
	l, err := NewLoadavg(fixtures, 2)
	if err != nil {
		t.Fatal(err)
	}
	// load1 3.00 on 4 CPUs at 2 per core: 1 - 3/8.
	if r, err := l.Read(context.Background()); err != nil || !near(r.Capacity, 62.5) {
		t.Fatalf("loadavg = %+v, %v; want 62.5", r, err)
	}
	l, _ = NewLoadavg(fixtures, 0.5) // 3 > 0.5*4: no capacity left, not below 0
	if r, err := l.Read(context.Background()); err != nil || r.Capacity != 0 {
		t.Fatalf("overloaded = %+v, %v; want 0", r, err)
	}
	if _, err := NewLoadavg(fixtures, 0); err == nil {
		t.Error("max_per_core 0 accepted")
	}
	l, _ = NewLoadavg(t.TempDir(), 2)
	if _, err := l.Read(context.Background()); err == nil {
		t.Error("missing loadavg: no error")
	}
}

func TestPSI(t *testing.T) {
	cases := []struct {
		resource string
		max      float64
		want     float64
	}{
		{"memory", 40, 75}, // avg10 10 of 40
		{"cpu", 40, 0},     // avg10 60 above 40
		{"cpu", 100, 40},
	}
	for _, c := range cases {
		p, err := NewPSI(fixtures, c.resource, c.max)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := p.Read(context.Background()); err != nil || !near(r.Capacity, c.want) {
			t.Errorf("psi %s max %v = %+v, %v; want %v", c.resource, c.max, r, err, c.want)
		}
	}
	p, _ := NewPSI(fixtures, "io", 40) // no "some" line
	if _, err := p.Read(context.Background()); err == nil {
		t.Error("psi without some: no error")
	}
	if _, err := NewPSI(fixtures, "disk", 40); err == nil {
		t.Error("resource disk accepted")
	}
	p, _ = NewPSI(t.TempDir(), "memory", 40)
	if _, err := p.Read(context.Background()); err == nil {
		t.Error("missing pressure file: no error")
	}
}
