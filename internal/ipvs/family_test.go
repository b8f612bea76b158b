package ipvs_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// TestApplyOpsMixedFamily: a real server of the other address family is
// accepted with tunnel forwarding only, as by the kernel since 3.18.
func TestApplyOpsMixedFamily(t *testing.T) {
	v4, v6 := svc("10.0.0.1", 80, "rr"), svc("2001:db8::1", 80, "rr")
	v6.Netmask = 128
	six := dest("2001:db8::11", 80, 1).Destination
	four := dest("10.0.0.11", 80, 1).Destination
	tun6, tun4 := six, four
	tun6.Forward, tun4.Forward = ipvs.Tunnel, ipvs.Tunnel
	nat6 := six
	nat6.Forward = ipvs.Masq
	ops := []ipvs.Op{
		{Kind: ipvs.AddService, Service: v4},
		{Kind: ipvs.AddService, Service: v6},
		{Kind: ipvs.AddDest, Service: v4, Dest: six},   // 2 EINVAL: dr
		{Kind: ipvs.AddDest, Service: v4, Dest: nat6},  // 3 EINVAL: nat
		{Kind: ipvs.AddDest, Service: v4, Dest: tun6},  // fine
		{Kind: ipvs.AddDest, Service: v6, Dest: tun4},  // fine
		{Kind: ipvs.EditDest, Service: v4, Dest: six},  // 6 EINVAL: back to dr
		{Kind: ipvs.DelDest, Service: v6, Dest: four},  // fine: deleting names the server only
		{Kind: ipvs.AddDest, Service: v6, Dest: four},  // 8 EINVAL
		{Kind: ipvs.EditDest, Service: v4, Dest: tun6}, // fine
	}
	var refused []int
	out := ipvs.ApplyOps(nil, ops, func(i int, err error) {
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("op %d refused with %v, want EINVAL", i, err)
		}
		refused = append(refused, i)
	})
	if len(refused) != 4 || refused[0] != 2 || refused[1] != 3 || refused[2] != 6 || refused[3] != 8 {
		t.Errorf("refused ops %v, want [2 3 6 8]", refused)
	}
	if got := formatWithStats(out); got != "-A -t 10.0.0.1:80 -s rr conns=0 hashed=true\n"+
		"-a -t 10.0.0.1:80 -r [2001:db8::11]:80 -i -w 1 --tun-type ipip conns=0 active=0\n"+
		"-A -t [2001:db8::1]:80 -s rr conns=0 hashed=true\n" {
		t.Errorf("table:\n%s", got)
	}
}
