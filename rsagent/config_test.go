package rsagent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/config"
)

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each error, in file order
	}{
		{"missing section", "listen: {metrics: 127.0.0.1:9723}\n",
			[]string{":1:1: realserver: the realserver section is missing"}},
		{"everything wrong", `realserver:
  state_dir: var/lib
  watch_interval: 10ms
  vips:
    - {address: 10.0.0.100, mode: dr}
    - {address: 10.0.0.100, mode: tun}
    - {address: 10.0.0.300, mode: dr}
    - {address: 10.0.0.5, mode: dsr}
    - {address: 192.168.50.100, mode: nat}
    - {address: 192.168.50.101, mode: nat, gateway: "fd00::1"}
    - {address: "fd00::5", mode: tun, tunnel: vxlan}
    - {address: 10.0.0.6, mode: dr, gateway: 10.0.0.1}
    - {address: 10.0.0.7, mode: nat, gateway: 10.0.0.1, routes: [192.0.2.1/24]}
    - {address: 10.0.0.8, mode: dr, interface: eth0}
  arp: {ignore: 4, announce: 3, interfaces: ["bad/name"]}
listen: {metrics: "9723"}
`, []string{
			":2:3: realserver.state_dir: want an absolute path",
			":3:3: realserver.watch_interval: want at least 100ms",
			":6:8: realserver.vips[1].address: VIP 10.0.0.100 is already listed at ",
			":7:8: realserver.vips[2].address: want an IPv4 or IPv6 address",
			":8:27: realserver.vips[3].mode: want dr, tun or nat, got \"dsr\"",
			":9:7: realserver.vips[4].gateway: a nat VIP needs gateway",
			":10:44: realserver.vips[5].gateway: gateway fd00::1 and VIP 192.168.50.101 are of different address families",
			":11:39: realserver.vips[6].tunnel: want ipip, gue, gre or ip6tnl, got \"vxlan\"",
			":12:37: realserver.vips[7].gateway: gateway applies to nat VIPs only",
			":13:66: realserver.vips[8].routes[0]: 192.0.2.1/24 has host bits set; did you mean 192.0.2.0/24?",
			":14:37: realserver.vips[9].interface: want lo or dummy, got \"eth0\"",
			":15:9: realserver.arp.ignore: want 0, 1, 2, 3 or 8",
			":15:20: realserver.arp.announce: want 0, 1 or 2, got 3",
			":15:46: realserver.arp.interfaces[0]: bad interface name",
			":16:10: listen.metrics: want host:port",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "rs.yaml")
			if err := os.WriteFile(p, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadConfig(p)
			errs := config.AsErrors(err)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, e := range errs {
				if got := e.Error(); !strings.HasPrefix(got, p) || !strings.Contains(got, tt.want[i]) {
					t.Errorf("error %d = %q, want it to start with the file and contain %q", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, _ := loadYAML(t, "/var/lib/x", `realserver:
  state_dir: STATE
  vips: [{address: 10.0.0.100, mode: dr}]
`)
	rs := c.Realserver
	if *rs.ARP.Ignore != 1 || *rs.ARP.Announce != 2 || rs.WatchInterval.D() != DefaultWatchInterval ||
		rs.RestoreOnExitValue() || rs.VIPs[0].Interface != "lo" || rs.DummyInterface != "lvs0" {
		t.Fatalf("defaults not filled: %+v", rs)
	}
}
