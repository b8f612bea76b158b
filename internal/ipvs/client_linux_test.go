package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func freshNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("real-kernel test needs root in CI")
		}
		t.Skip("needs root for a network namespace")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.Set(orig); err != nil {
			t.Errorf("restore network namespace: %v", err)
			return
		}
		orig.Close()
		runtime.UnlockOSThread()
	})
}

// TestOpenHere runs on whatever kernel the tests run on: without IPVS
// (the development machines) Open must fail promptly with ErrNoIPVS; with
// IPVS it must add, read back and delete a service in a fresh namespace.
// The full coverage is in the lab (e2e/ipvs_test.go).
func TestOpenHere(t *testing.T) {
	freshNetns(t)
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
