package director

import "testing"

func BenchmarkTmpChanged(b *testing.B) {
	c1, c2 := bigConfigs(b, b.TempDir())
	for b.Loop() {
		ch, ok := changedServices(c1.VirtualServices, c2.VirtualServices)
		if !ok || len(ch) != 1 {
			b.Fatal(ch, ok)
		}
	}
}
