package load

import (
	"context"
	"net"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
)

func TestConnectionsCountsEstablished(t *testing.T) {
	ns := kerneltest.FreshNetns(t)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	other, err := net.Listen("tcp", "[::1]:9090")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ln6, err := net.Listen("tcp", "[::1]:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln6.Close()
	for _, l := range []net.Listener{ln, other, ln6} {
		go func(l net.Listener) {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}(l)
	}
	var conns []net.Conn
	dial := func(addr string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for range 3 {
		dial("127.0.0.1:8080")
	}
	dial("[::1]:8080")
	dial("[::1]:9090") // another port: not counted
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	c, err := NewConnectionsAt(ns, []uint16{8080, 443}, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Each connection has two ends; only the server end has local port
	// 8080 (the client end has an ephemeral one).
	if n, err := c.Count(); err != nil || n != 4 {
		t.Fatalf("Count = %d, %v; want 4", n, err)
	}
	if r, err := c.Read(context.Background()); err != nil || r.Capacity != 50 {
		t.Fatalf("Read = %+v, %v; want 50", r, err)
	}
	if _, err := NewConnectionsAt(ns, nil, 8); err == nil {
		t.Error("no ports accepted")
	}
}
