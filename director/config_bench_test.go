package director

import (
	"fmt"
	"strings"
	"testing"
)

// bigDirectorConfig is a director.yaml with n services of 10 real servers.
func bigDirectorConfig(n int) []byte {
	var b strings.Builder
	b.WriteString("director:\n  state_dir: /tmp/lvs-bench\nvirtual_services:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: s%d\n    vip: 10.%d.%d.1\n    port: 80\n    scheduler: wlc\n    forwarding: dr\n    real_servers:\n", i, i/256, i%256)
		for j := 0; j < 10; j++ {
			fmt.Fprintf(&b, "      - {address: 10.200.%d.%d, port: 80, weight: 100}\n", i%256, j+1)
		}
	}
	return []byte(b.String())
}

func BenchmarkParseConfig10k(b *testing.B) {
	data := bigDirectorConfig(10000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := ParseConfig("big.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
