package director

import (
	"testing"

	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
	"github.com/lvs-node/lvs-node/internal/state"
)

// BenchmarkOnce measures what `lvs-node director --once` does with a
// 10,000-service file besides the kernel's own work: parse, validate,
// plan from an empty table, record, and apply to the test kernel.
func BenchmarkOnce(b *testing.B) {
	dir := b.TempDir()
	data := []byte("director:\n  state_dir: " + dir + "\n" + bigConfig(10000))
	b.ReportAllocs()
	for b.Loop() {
		k := ipvstest.New()
		cfg, _, err := ParseConfig("d.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		e := NewEngine(dir, Deps{Kernel: k})
		if _, err := e.Apply(b.Context(), cfg); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := state.Remove(recordsPath(dir)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
