//go:build e2e

package e2e

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/nftmark"
	"github.com/lvs-node/lvs-node/lab/topo"
)

// TestNftmarkCarriesFWMService: a firewall-mark service over ports 80 and
// 443 of a VIP, with persistence, reached only because the nftables rules
// mark the packets; one client lands on one real server on both ports.
func TestNftmarkCarriesFWMService(t *testing.T) {
	modprobe(t, "ip_vs", "nf_tables")
	l := topo.New(t)
	lan := l.Net("lan", "10.1.0.0/24")
	back := l.Net("back", "10.2.0.0/24")
	client := l.Host("client", topo.On(lan, "10.1.0.2"))
	dir := l.Host("dir", topo.On(lan, "10.1.0.1"), topo.On(back, "10.2.0.1"))
	rs1 := l.Host("rs1", topo.On(back, "10.2.0.11"))
	rs2 := l.Host("rs2", topo.On(back, "10.2.0.12"))
	dir.Sysctl(t, "net/ipv4/ip_forward", "1")
	for _, rs := range []*topo.Host{rs1, rs2} {
		rs.MustRun(t, "ip", "route", "add", "default", "via", "10.2.0.1")
		rs.ServeName(t, 80)
		rs.ServeName(t, 443)
	}

	var (
		c *ipvs.Client
		m *nftmark.Marker
	)
	if err := dir.Do(func() error {
		var err error
		if c, err = ipvs.Open(); err != nil {
			return err
		}
		m, err = nftmark.Open("lvs-node")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); m.Close() })

	ctx := ctxT(t, time.Minute)
	svc := ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: af4, FWMark: 7}, Scheduler: "rr",
		Flags: ipvs.FlagPersistent, Timeout: 300, Netmask: 0xffffffff}
	if err := c.Apply(ctx, []ipvs.Op{
		{Kind: ipvs.AddService, Service: svc},
		{Kind: ipvs.AddDest, Service: svc, Dest: dst("10.2.0.11", 0, ipvs.Masq, 1)},
		{Kind: ipvs.AddDest, Service: svc, Dest: dst("10.2.0.12", 0, ipvs.Masq, 1)},
	}); err != nil {
		t.Fatal(err)
	}

	// Without the mark nothing reaches the service.
	if got, err := client.Get("10.1.0.1:80", 2*time.Second); err == nil {
		t.Fatalf("unmarked request answered by %q", got)
	}

	rules := []nftmark.Rule{{VIP: netip.MustParseAddr("10.1.0.1"), Protocol: ipvs.TCP, Ports: []uint16{80, 443}, Mark: 7, Mask: 0xff}}
	for range 2 {
		if err := m.Set(rules); err != nil {
			t.Fatal(err)
		}
	}
	back2, err := m.Rules()
	if err != nil || len(back2) != 1 || !back2[0].Equal(rules[0]) {
		t.Fatalf("rules read back: %v, %v", back2, err)
	}

	first := ""
	for i := range 6 {
		for _, port := range []string{"80", "443"} {
			got, err := client.Get("10.1.0.1:"+port, 5*time.Second)
			if err != nil {
				t.Fatalf("request %d to port %s: %v", i, port, err)
			}
			if first == "" {
				first = got
			}
			if got != first {
				t.Fatalf("request %d to port %s answered by %s, earlier ones by %s: persistence does not span the ports", i, port, got, first)
			}
		}
	}
	t.Logf("all 12 requests on ports 80 and 443 answered by %s", first)
	if out := dir.MustRun(t, "ipvsadm", "-Lnc"); !hasLine(out, "10.1.0.2:", "10.1.0.1:443") {
		t.Errorf("connection table lacks the port-443 connection:\n%s", out)
	}

	for range 2 {
		if err := m.Delete(); err != nil {
			t.Fatal(err)
		}
	}
	if rs, err := m.Rules(); err != nil || len(rs) != 0 {
		t.Fatalf("rules after delete: %v, %v", rs, err)
	}
	if got, err := client.Get("10.1.0.1:443", 2*time.Second); err == nil {
		t.Fatalf("request answered by %q after the marks were deleted", got)
	}
}
