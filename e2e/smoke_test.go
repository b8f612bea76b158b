//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// TestSmoke proves the lab is a real director kernel: the IPVS and IPIP
// modules load, ipvsadm creates and lists a service, TCP crosses a bridge
// between two namespaces, and a NAT service created by hand carries TCP.
func TestSmoke(t *testing.T) {
	modprobe(t, "ip_vs", "ipip")
	for _, m := range []string{"ip_vs", "ipip"} {
		if !moduleLoaded(t, m) {
			t.Fatalf("module %s not loaded after modprobe", m)
		}
	}

	l := topo.New(t)
	lan := l.Net("lan", "10.1.0.0/24")
	back := l.Net("back", "10.2.0.0/24")
	client := l.Host("client", topo.On(lan, "10.1.0.2"))
	dir := l.Host("dir", topo.On(lan, "10.1.0.1"), topo.On(back, "10.2.0.1"))
	rs1 := l.Host("rs1", topo.On(back, "10.2.0.11"))
	rs2 := l.Host("rs2", topo.On(back, "10.2.0.12"))

	rs1.ServeName(t, 8080)
	if got, err := dir.Get("10.2.0.11:8080", 5*time.Second); err != nil || got != "rs1" {
		t.Fatalf("TCP across the bridge: got %q, %v", got, err)
	}

	dir.Sysctl(t, "net/ipv4/ip_forward", "1")
	for _, rs := range []*topo.Host{rs1, rs2} {
		rs.MustRun(t, "ip", "route", "add", "default", "via", "10.2.0.1")
		if rs != rs1 {
			rs.ServeName(t, 8080)
		}
	}
	dir.MustRun(t, "ipvsadm", "-A", "-t", "10.1.0.1:80", "-s", "rr")
	dir.MustRun(t, "ipvsadm", "-a", "-t", "10.1.0.1:80", "-r", "10.2.0.11:8080", "-m")
	dir.MustRun(t, "ipvsadm", "-a", "-t", "10.1.0.1:80", "-r", "10.2.0.12:8080", "-m")
	list := dir.MustRun(t, "ipvsadm", "-Ln")
	for _, want := range []string{"TCP  10.1.0.1:80 rr", "-> 10.2.0.11:8080", "-> 10.2.0.12:8080"} {
		if !strings.Contains(list, want) {
			t.Fatalf("ipvsadm -Ln lacks %q:\n%s", want, list)
		}
	}
	seen := map[string]int{}
	for i := 0; i < 6; i++ {
		got, err := client.Get("10.1.0.1:80", 5*time.Second)
		if err != nil {
			t.Fatalf("request %d through the VIP: %v", i, err)
		}
		seen[got]++
	}
	if seen["rs1"] != 3 || seen["rs2"] != 3 {
		t.Fatalf("round robin over 6 requests answered %v, want rs1 and rs2 three times each", seen)
	}
	// The IPVS table belongs to the director's namespace only.
	if out := client.MustRun(t, "ipvsadm", "-Ln"); strings.Contains(out, "10.1.0.1:80") {
		t.Fatalf("client namespace sees the director's IPVS table:\n%s", out)
	}
}
