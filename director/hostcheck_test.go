package director

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
)

const hostCheckConfig = `virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    scheduler: twos
  - name: tun
    vip: 10.0.0.101
    port: 80
    forwarding: tun
    real_servers:
      - {address: 10.0.0.11, tunnel_type: gue, tunnel_port: 5555}
      - {address: 10.0.0.12}
`

func TestCheckHost(t *testing.T) {
	cfg, doc, err := ParseConfig("d.yaml", []byte(hostCheckConfig))
	if err != nil {
		t.Fatal(err)
	}
	k := ipvstest.New()
	k.SetRelease("5.2.21")
	got := config.AsErrors(CheckHost(cfg, doc, k))
	want := []string{
		"d.yaml:5:5: virtual_services[0].scheduler: scheduler twos cannot be used on this host: kernel 5.2.21 has no module ip_vs_twos",
		"d.yaml:11:30: virtual_services[1].real_servers[0].tunnel_type: this host runs Linux 5.2.21, which ignores tunnel_type gue and would send IPIP instead: tunnel types other than ipip need Linux 5.3 or newer",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Error() != want[i] {
			t.Errorf("problem %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	// A kernel that has both: nothing to say.
	k.SetModule(ipvs.SchedulerModule("twos"), true)
	k.SetRelease("6.1.0-18-amd64")
	if err := CheckHost(cfg, doc, k); err != nil {
		t.Errorf("on a kernel that can: %v", err)
	}
	// A host whose files tell nothing (no /lib/modules, an unparsable
	// release) says nothing false.
	if err := CheckHost(cfg, doc, ipvs.NewKernelFiles(t.TempDir())); err != nil {
		t.Errorf("on a host that cannot tell: %v", err)
	}
}

// TestOldKernelIgnoresTunnelTypes shows what CheckHost prevents: a kernel
// before 5.3 makes a GUE real server IPIP, and every resync finds it
// differs and edits it again.
func TestOldKernelIgnoresTunnelTypes(t *testing.T) {
	r := newRig(t)
	r.k.SetRelease("4.19.0-26-amd64")
	cfg := r.config(t, strings.Replace(hostCheckConfig, "scheduler: twos", "scheduler: rr", 1))
	r.apply(t, cfg)
	if !strings.Contains(r.k.String(), "-a -t 10.0.0.101:80 -r 10.0.0.11:80 -i -w 1 --tun-type ipip\n") {
		t.Fatalf("the old kernel kept the tunnel type:\n%s", r.k)
	}
	for range 2 {
		if n, err := r.engine.Resync(t.Context()); err != nil || n != 1 {
			t.Errorf("resync on the old kernel: %d changes, %v; want the same edit again", n, err)
		}
	}
}

func TestHostNotesIPv6VIPOnLo(t *testing.T) {
	cfg, doc, err := ParseConfig("d.yaml", []byte(`virtual_services:
  - {name: v6, vip: "2001:db8::1", port: 80, bind_vip: true}
  - {name: v4, vip: 10.0.0.1, port: 80, bind_vip: true}
  - {name: routed, vip: "2001:db8::2", port: 80}
`))
	if err != nil {
		t.Fatal(err)
	}
	notes := HostNotes(cfg, doc)
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "d.yaml:2:46: virtual_services[0].bind_vip: IPv6 VIP 2001:db8::1 is bound on lo, where neighbour discovery does not answer for it") {
		t.Errorf("notes = %q", notes)
	}
	cfg, doc, err = ParseConfig("d.yaml", []byte("director: {vip_interface: eth0}\nvirtual_services:\n  - {name: v6, vip: \"2001:db8::1\", port: 80, bind_vip: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if notes := HostNotes(cfg, doc); len(notes) != 0 {
		t.Errorf("notes with vip_interface eth0: %q", notes)
	}
}

// TestQuiesceNote: services that quiesce failed real servers get a note
// unless expire_nodest_conn is on; services without checks, or that remove
// failed servers, get none.
func TestQuiesceNote(t *testing.T) {
	svc := "virtual_services:\n  - name: web\n    vip: 10.0.0.100\n    port: 80\n    health_check: {type: tcp%s}\n    real_servers: [{address: 10.0.0.11}]\n"
	for _, tc := range []struct {
		name, head, check string
		want              bool
	}{
		{"quiesce", "", "", true},
		{"quiesce with expire_nodest_conn", "director: {sysctls: {expire_nodest_conn: true}}\n", "", false},
		{"remove", "", ", on_failure: remove", false},
	} {
		cfg, doc, err := ParseConfig("d.yaml", []byte(tc.head+fmt.Sprintf(svc, tc.check)))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		notes := strings.Join(HostNotes(cfg, doc), "\n")
		if got := strings.Contains(notes, "d.yaml:5:") && strings.Contains(notes, "expire_nodest_conn: true"); got != tc.want {
			t.Errorf("%s: notes %q, want a quiesce note %v", tc.name, notes, tc.want)
		}
	}
	cfg, doc, err := ParseConfig("d.yaml", []byte("virtual_services:\n  - {name: web, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.11}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if n := HostNotes(cfg, doc); len(n) != 0 {
		t.Errorf("a service without checks got notes %q", n)
	}
}
