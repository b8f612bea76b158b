package toa_test

import (
	"net/netip"
	"testing"

	"github.com/lvs-node/lvs-node/toa"
	"github.com/lvs-node/lvs-node/toa/format"
	"github.com/lvs-node/lvs-node/toa/toatest"
)

func TestSmokeScratch(t *testing.T) {
	pin := toatest.PinDir(t)
	bal, srv := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.10")
	l, err := toa.NewLab(toa.LabOptions{Addrs: []netip.Addr{bal, srv}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch, err := toa.Attach(toa.Config{Cgroup: l.Cgroup, Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, toa.Options{PinDir: pin})
	t.Log(ch, err)
	if err != nil {
		t.Fatal(err)
	}
	opt, _ := format.Encode(format.K254, netip.MustParseAddrPort("203.0.113.7:40001"))
	if err := l.Inject(opt, toa.InACK); err != nil {
		t.Fatal(err)
	}
	s, err := l.Connect(toa.Conn{Listen: toa.ListenDual, Server: srv, Balancer: bal, Data: true})
	t.Logf("%+v %v", s, err)
	t.Log(l.InjectorStats())
	ch, err = toa.Attach(toa.Config{Cgroup: l.Cgroup, Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, toa.Options{PinDir: pin})
	t.Log("again", ch, err)
	ch, err = toa.Detach(toa.Options{PinDir: pin})
	t.Log(ch, err)
}
