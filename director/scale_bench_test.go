package director

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// BenchmarkReloadOneWeight measures a reload of a 10,000-service site
// whose one weight changed: read what changed, check it, plan it and
// apply it to the test kernel. files=100 splits the site into included
// files of 100 services; files=1 keeps it in director.yaml.
func BenchmarkReloadOneWeight(b *testing.B) {
	for _, files := range []int{100, 1} {
		b.Run(fmt.Sprintf("files=%d", files), func(b *testing.B) {
			dir := b.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "services.d"), 0o755); err != nil {
				b.Fatal(err)
			}
			head := "director:\n  state_dir: " + dir + "\n"
			per := 10000 / files
			body := func(f, w int) string {
				var s strings.Builder
				for i := f * per; i < (f+1)*per; i++ {
					fmt.Fprintf(&s, "- name: s%d\n  vip: %s\n  port: 80\n  real_servers:\n", i, netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
					for j := range 10 {
						weight := 100
						if i == f*per && j == 0 {
							weight = w
						}
						fmt.Fprintf(&s, "    - {address: 172.16.%d.%d, weight: %d}\n", i%250, j+1, weight)
					}
				}
				return s.String()
			}
			write := func(name, text string) {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					b.Fatal(err)
				}
				old := time.Now().Add(-time.Hour)
				if err := os.Chtimes(p, old, old); err != nil {
					b.Fatal(err)
				}
			}
			mainFile := func(w int) string {
				return head + "virtual_services:\n" + indent(body(0, w))
			}
			if files > 1 {
				write("director.yaml", head+"include: [services.d/*.yaml]\n")
				for f := range files {
					write(fmt.Sprintf("services.d/%03d.yaml", f), body(f, 100))
				}
			} else {
				write("director.yaml", mainFile(100))
			}
			l := NewLoader(filepath.Join(dir, "director.yaml"))
			l.trustAfter = 0
			cfg, _, err := l.Load()
			if err != nil {
				b.Fatal(err)
			}
			e := NewEngine(dir, Deps{Kernel: ipvstest.New()})
			if _, err := e.Apply(b.Context(), cfg); err != nil {
				b.Fatal(err)
			}
			w := 100
			for b.Loop() {
				b.StopTimer()
				w = 300 - w // 100, 200, 100...
				if files > 1 {
					write("services.d/042.yaml", body(42, w))
				} else {
					write("director.yaml", mainFile(w))
				}
				b.StartTimer()
				cfg, _, err := l.Load()
				if err != nil {
					b.Fatal(err)
				}
				ops, err := e.Reload(b.Context(), cfg)
				if err != nil || len(ops) != 1 {
					b.Fatalf("reload made %v: %v", ops, err)
				}
			}
		})
	}
}
