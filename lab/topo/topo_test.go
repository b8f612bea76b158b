package topo

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
)

func namespacesWithID(t *testing.T, id string) []string {
	t.Helper()
	entries, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), id) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestTwoHostsTalkAndLeaveNothing(t *testing.T) {
	kerneltest.NeedRoot(t)
	var id string
	t.Run("topology", func(t *testing.T) {
		l := New(t)
		id = l.ID()
		lan := l.Net("lan", "10.99.0.0/24")
		v6 := l.Net("v6", "fd00:99::/64")
		a := l.Host("a", On(lan, "10.99.0.1"), On(v6, "fd00:99::1"))
		b := l.Host("b", On(lan, "10.99.0.2"), On(v6, "fd00:99::2"))
		b.ServeName(t, 8080)
		for _, addr := range []string{"10.99.0.2:8080", "[fd00:99::2]:8080"} {
			got, err := a.Get(addr, 3*time.Second)
			if err != nil || got != "b" {
				t.Fatalf("Get(%s) = %q, %v; want b", addr, got, err)
			}
			got, err = a.GetUDP(addr, 3*time.Second)
			if err != nil || got != "b" {
				t.Fatalf("GetUDP(%s) = %q, %v; want b", addr, got, err)
			}
		}
		if a.Ifname(v6) != "eth1" || a.IP(lan).String() != "10.99.0.1" {
			t.Fatalf("ifname/IP bookkeeping wrong: %s %s", a.Ifname(v6), a.IP(lan))
		}
		if _, err := exec.LookPath("nsenter"); err == nil {
			out := a.MustRun(t, "cat", "/proc/sys/net/ipv4/ip_forward")
			if strings.TrimSpace(out) != "0" {
				t.Fatalf("fresh namespace ip_forward = %q", out)
			}
			a.Sysctl(t, "net/ipv4/ip_forward", "1")
			if got := a.ReadSysctl(t, "net/ipv4/ip_forward"); got != "1" {
				t.Fatalf("ip_forward after Sysctl = %q", got)
			}
			p := b.Start(t, "sleep", "60")
			if err := p.Stop(5 * time.Second); err == nil || !p.Exited() {
				t.Fatalf("Stop: err=%v exited=%v", err, p.Exited())
			}
		}
		if got := namespacesWithID(t, id); len(got) != 3 {
			t.Fatalf("namespaces = %v, want switch + 2 hosts", got)
		}
	})
	if left := namespacesWithID(t, id); len(left) != 0 {
		t.Fatalf("namespaces left behind: %v", left)
	}
}
