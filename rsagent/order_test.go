package rsagent

import (
	"math/rand/v2"
	"strings"
	"testing"
)

var orderConfigs = []string{
	`realserver:
  state_dir: STATE
  vips:
    - {address: 10.0.0.100, mode: dr}
`,
	`realserver:
  state_dir: STATE
  vips:
    - {address: 10.0.0.100, mode: dr, interface: dummy}
    - {address: "fd00::100", mode: dr}
  arp: {ignore: 2, announce: 1, interfaces: [eth0]}
`,
	`realserver:
  state_dir: STATE
  vips:
    - {address: 10.0.0.101, mode: tun}
    - {address: 10.0.0.102, mode: dr}
`,
	`realserver:
  state_dir: STATE
  vips:
    - {address: 192.168.50.100, mode: nat, gateway: 10.0.0.2, routes: [192.0.2.0/24]}
    - {address: 192.168.50.101, mode: nat, gateway: 10.0.0.3}
`,
}

// TestApplyInRandomOrder applies the configurations in random orders (each
// possibly twice) to one host and one state directory, as an operator who
// edits the file and runs up again would. The host must end exactly as if
// only the last configuration had been applied, and down must bring back
// the untouched host.
func TestApplyInRandomOrder(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for round := range 8 {
		f := newFake(t)
		stateDir := t.TempDir()
		var last int
		for range 1 + rng.IntN(6) {
			last = rng.IntN(len(orderConfigs))
			c, doc := loadYAML(t, stateDir, orderConfigs[last])
			if _, err := newAgent(t, f, c, doc).Up(); err != nil {
				t.Fatalf("round %d: up of config %d: %v", round, last, err)
			}
		}
		// The same configuration again: no change.
		c, doc := loadYAML(t, stateDir, orderConfigs[last])
		a := newAgent(t, f, c, doc)
		if ch, err := a.Up(); err != nil || len(ch) != 0 {
			t.Fatalf("round %d: repeated up of config %d: %q, %v", round, last, ch, err)
		}

		ref := newFake(t)
		_, tunLoaded := f.modules["ipip"]
		tunLoaded = !tunLoaded
		if tunLoaded {
			if err := ref.LoadModule("ipip"); err != nil {
				t.Fatal(err)
			}
		}
		untouched := ref.String()
		rc, rdoc := loadYAML(t, t.TempDir(), orderConfigs[last])
		if _, err := newAgent(t, ref, rc, rdoc).Up(); err != nil {
			t.Fatal(err)
		}
		if got, want := f.String(), ref.String(); got != want {
			t.Fatalf("round %d: after the sequence ending with config %d:\n%s\nwant:\n%s", round, last, got, want)
		}
		if _, err := a.Down(); err != nil {
			t.Fatal(err)
		}
		if got := f.String(); got != untouched {
			t.Fatalf("round %d: down left:\n%s\nwant:\n%s", round, got, untouched)
		}
		if strings.Contains(f.String(), "lvs0") {
			t.Fatalf("dummy interface left behind")
		}
	}
}
