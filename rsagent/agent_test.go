package rsagent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/sysctls"
)

// loadYAML writes body to a file and loads it, with state_dir set to a
// temporary directory when the body does not set one.
func loadYAML(t *testing.T, stateDir, body string) (*Config, *config.Doc) {
	t.Helper()
	body = strings.Replace(body, "STATE", stateDir, 1)
	p := filepath.Join(t.TempDir(), "rs.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, doc, err := LoadConfig(p)
	if err != nil {
		t.Fatalf("LoadConfig:\n%v", err)
	}
	return c, doc
}

func newAgent(t *testing.T, f *fakeKernel, c *Config, doc *config.Doc) *Agent {
	t.Helper()
	rec, err := OpenSysctls(c, sysctls.WithRoot(f.root))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(c, doc, Deps{Kernel: f, Sysctls: rec})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

const baseState = `ip link set lo up
ip link add eth0 type veth
ip link set eth0 up
ip addr add 10.0.0.11/24 dev eth0
ip addr add 127.0.0.1/8 dev lo
ip addr add fd00::11/64 dev eth0
ip route add 10.0.0.0/24 dev eth0 src 10.0.0.11
ip route add default via 10.0.0.1 dev eth0
`

// sysLines builds the sysctl lines for devices: each entry is dev followed
// by arp_announce arp_ignore rp_filter values.
func sysLines(devs ...[4]string) string {
	var b strings.Builder
	slices.SortFunc(devs, func(a, b [4]string) int { return strings.Compare(a[0], b[0]) })
	for _, d := range devs {
		for i, name := range []string{"arp_announce", "arp_ignore", "rp_filter"} {
			b.WriteString("sysctl -w net/ipv4/conf/" + d[0] + "/" + name + "=" + d[i+1] + "\n")
		}
	}
	return b.String()
}

var untouched = [][4]string{{"all", "0", "0", "2"}, {"default", "0", "0", "2"}, {"lo", "0", "0", "2"}, {"eth0", "0", "0", "2"}}

func TestUpTable(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // state after up
		n    int    // number of changes reported
		// tunl0 stays after down (the ipip module is not unloaded), down
		// and with its sysctls restored.
		keepsTunl0 bool
	}{
		{
			name: "dr on lo",
			yaml: `realserver:
  state_dir: STATE
  vips:
    - {address: 10.0.0.100, mode: dr}
`,
			want: strings.Replace(baseState, "ip addr add 10.0.0.11/24 dev eth0\n",
				"ip addr add 10.0.0.100/32 dev lo label lo:lvs\nip addr add 10.0.0.11/24 dev eth0\n", 1) +
				sysLines([4]string{"all", "2", "1", "2"}, [4]string{"default", "0", "0", "2"},
					[4]string{"lo", "2", "1", "2"}, [4]string{"eth0", "0", "0", "2"}),
			n: 5,
		},
		{
			name: "dr on dummy with custom arp values and ipv6",
			yaml: `realserver:
  state_dir: STATE
  dummy_interface: vip0
  vips:
    - {address: 10.0.0.100, mode: dr, interface: dummy}
    - {address: "fd00::100", mode: dr, interface: dummy}
    - {address: "fd00::101", mode: dr}
  arp: {ignore: 2, announce: 1}
`,
			want: "ip link set lo up\nip link add eth0 type veth\nip link set eth0 up\nip link add vip0 type dummy\nip link set vip0 up\n" +
				"ip addr add 10.0.0.100/32 dev vip0\n" +
				"ip addr add 10.0.0.11/24 dev eth0\nip addr add 127.0.0.1/8 dev lo\n" +
				"ip addr add fd00::100/128 dev vip0\nip addr add fd00::101/128 dev lo\nip addr add fd00::11/64 dev eth0\n" +
				"ip route add 10.0.0.0/24 dev eth0 src 10.0.0.11\nip route add default via 10.0.0.1 dev eth0\n" +
				sysLines([4]string{"all", "1", "2", "2"}, [4]string{"default", "0", "0", "2"},
					[4]string{"lo", "1", "2", "2"}, [4]string{"eth0", "0", "0", "2"}, [4]string{"vip0", "1", "2", "2"}),
			n: 10, // 2 all, link, 4 dev sysctls (lo, vip0), 3 addresses
		},
		{
			name: "tun loads ipip",
			yaml: `realserver:
  state_dir: STATE
  vips:
    - {address: 10.0.0.101, mode: tun}
`,
			want: baseState[:len("ip link set lo up\nip link add eth0 type veth\nip link set eth0 up\n")] +
				"ip link add tunl0 type ipip\nip link set tunl0 up\n" +
				"ip addr add 10.0.0.101/32 dev tunl0\n" +
				baseState[len("ip link set lo up\nip link add eth0 type veth\nip link set eth0 up\n"):] +
				sysLines([4]string{"all", "2", "1", "0"}, [4]string{"default", "0", "0", "2"},
					[4]string{"lo", "2", "1", "2"}, [4]string{"eth0", "0", "0", "2"}, [4]string{"tunl0", "2", "1", "0"}),
			n:          10, // 3 all, up, 5 dev, addr
			keepsTunl0: true,
		},
		{
			name: "nat default route replaced and prefixes",
			yaml: `realserver:
  state_dir: STATE
  vips:
    - {address: 192.168.50.100, mode: nat, gateway: 10.0.0.2}
    - {address: 192.168.50.101, mode: nat, gateway: 10.0.0.2, routes: [192.0.2.0/24, 198.51.100.0/25]}
`,
			want: strings.Replace(baseState, "ip route add default via 10.0.0.1 dev eth0\n",
				"ip route add 192.0.2.0/24 via 10.0.0.2\nip route add 198.51.100.0/25 via 10.0.0.2\nip route add default via 10.0.0.2\n", 1) +
				sysLines(untouched...),
			n: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			before := f.String()
			if tt.keepsTunl0 {
				before = strings.Replace(before, "ip link set eth0 up\n", "ip link set eth0 up\nip link add tunl0 type ipip\nip link set tunl0 down\n", 1) +
					sysLines([4]string{"tunl0", "0", "0", "2"})
				before = sortSysctls(before)
			}
			c, doc := loadYAML(t, t.TempDir(), tt.yaml)
			a := newAgent(t, f, c, doc)
			changes, err := a.Up()
			if err != nil {
				t.Fatal(err)
			}
			if got := f.String(); got != tt.want {
				t.Errorf("state after up:\n%s\nwant:\n%s", got, tt.want)
			}
			if len(changes) != tt.n {
				t.Errorf("up reported %d changes, want %d:\n%s", len(changes), tt.n, strings.Join(changes, "\n"))
			}
			// Up twice: nothing changes, nothing is reported.
			adds := f.adds
			changes, err = a.Up()
			if err != nil || len(changes) != 0 || f.adds != adds {
				t.Errorf("second up: changes %q, err %v, kernel calls %d", changes, err, f.adds-adds)
			}
			// A new agent (a new process) reads the record and takes
			// everything down.
			a2 := newAgent(t, f, c, doc)
			changes, err = a2.Down()
			if err != nil {
				t.Fatal(err)
			}
			if got := f.String(); got != before {
				t.Errorf("state after down:\n%s\nwant the original:\n%s\nchanges: %q", got, before, changes)
			}
			entries, _ := os.ReadDir(c.Realserver.StateDir)
			if len(entries) != 0 {
				t.Errorf("state dir not empty after down: %v", entries)
			}
			changes, err = a2.Down()
			if err != nil || len(changes) != 0 {
				t.Errorf("second down: %q, %v", changes, err)
			}
		})
	}
}

// sortSysctls sorts the sysctl lines of a state text, as String does.
func sortSysctls(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "sysctl ") })
	slices.Sort(lines[i:])
	return strings.Join(lines, "\n") + "\n"
}
