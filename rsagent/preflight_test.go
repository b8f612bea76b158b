package rsagent

import (
	"os"
	"strings"
	"testing"
)

// Problems only the live host shows are reported with the position of the
// key, before any change.
func TestPreflightChangesNothing(t *testing.T) {
	tests := []struct {
		name  string
		host  func(f *fakeKernel)
		yaml  string
		wants []string
	}{
		{"ipip unavailable", func(f *fakeKernel) { delete(f.modules, "ipip") }, `realserver:
  state_dir: STATE
  vips:
    - {address: 10.0.0.100, mode: dr}
    - {address: 10.0.0.101, mode: tun}
`, []string{":5:29: realserver.vips[1].mode: ipip is unavailable: tunl0 is missing and fake kernel: modprobe: module ipip not found"}},
		{"vip on another interface, nat vip local, gateway off-net, dummy name taken", func(f *fakeKernel) {
			f.addrs = append(f.addrs, Addr{Dev: "eth0", Prefix: mustPrefix("10.0.0.100/24")},
				Addr{Dev: "eth0", Prefix: mustPrefix("192.168.50.100/32")})
		}, `realserver:
  state_dir: STATE
  dummy_interface: eth0
  vips:
    - {address: 10.0.0.100, mode: dr}
    - {address: 192.168.50.100, mode: nat, gateway: 10.0.0.2}
    - {address: 192.168.50.101, mode: nat, gateway: 172.16.0.1, routes: [198.51.100.0/24]}
    - {address: 10.0.0.102, mode: dr, interface: dummy}
  arp: {interfaces: [eth9]}
`, []string{
			":3:3: realserver.dummy_interface: interface eth0 exists and is of type veth, not dummy",
			":5:8: realserver.vips[0].address: VIP 10.0.0.100 is already an address of this host on eth0; a dr VIP must be on lo only",
			":6:8: realserver.vips[1].address: nat VIP 192.168.50.100 is an address of this host (on eth0)",
			":7:44: realserver.vips[2].gateway: gateway 172.16.0.1 is not on a connected network",
			":9:22: realserver.arp.interfaces[0]: this host has no interface eth9",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			tt.host(f)
			before := f.String()
			c, doc := loadYAML(t, t.TempDir(), tt.yaml)
			_, err := newAgent(t, f, c, doc).Up()
			if err == nil {
				t.Fatal("up succeeded")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.wants) {
				t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tt.wants), err)
			}
			for i, w := range tt.wants {
				if !strings.Contains(lines[i], w) {
					t.Errorf("problem %d = %q, want %q", i, lines[i], w)
				}
			}
			if got := f.String(); got != before {
				t.Errorf("failed up changed the host:\n%s\nwant:\n%s", got, before)
			}
			if entries, _ := os.ReadDir(c.Realserver.StateDir); len(entries) != 0 {
				t.Errorf("failed up wrote state: %v", entries)
			}
		})
	}
}
