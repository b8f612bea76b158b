package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/kerneltest"

	"golang.org/x/sys/unix"
)

// TestOpenHere runs on whatever kernel the tests run on: without IPVS
// (the development machines) Open must fail promptly with ErrNoIPVS; with
// IPVS it must add, read back and delete a service in a fresh namespace.
// The full coverage is in the lab (e2e/ipvs_test.go).
func TestOpenHere(t *testing.T) {
	kerneltest.FreshNetns(t)
	start := time.Now()
	c, err := Open()
	if err != nil {
		if !errors.Is(err, ErrNoIPVS) {
			t.Fatalf("Open on a kernel without IPVS: %v, want ErrNoIPVS", err)
		}
		if took := time.Since(start); took > 2*defaultWait {
			t.Fatalf("Open took %v to give up", took)
		}
		t.Logf("no IPVS here: %v", err)
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc := Service{ServiceKey: ServiceKey{Family: afInet, Protocol: TCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80},
		Scheduler: "rr", Flags: FlagPersistent, Timeout: 60, Netmask: 0xffffff00}
	d := Destination{DestKey: DestKey{Addr: netip.MustParseAddr("192.0.2.11"), Port: 80}, Forward: Route, Weight: 3}
	if err := c.Apply(ctx, []Op{{Kind: AddService, Service: svc}, {Kind: AddDest, Service: svc, Dest: d}}); err != nil {
		t.Fatal(err)
	}
	tab, err := c.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Services) != 1 || !tab.Services[0].Service.Equal(svc) || len(tab.Services[0].Dests) != 1 || !tab.Services[0].Dests[0].Destination.Equal(d) {
		t.Fatalf("read back %+v", tab.Services)
	}
	err = c.Apply(ctx, []Op{{Kind: AddService, Service: svc}})
	if !errors.Is(err, unix.EEXIST) {
		t.Fatalf("duplicate add: %v, want EEXIST", err)
	}
	if err := c.Apply(ctx, []Op{{Kind: DelService, Service: svc}}); err != nil {
		t.Fatal(err)
	}
}
