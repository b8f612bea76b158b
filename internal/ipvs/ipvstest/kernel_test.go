package ipvstest

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

func svc(port uint16, sched string) ipvs.Service {
	a := netip.MustParseAddr("10.0.0.1")
	return ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: ipvs.FamilyOf(a), Protocol: ipvs.TCP, Addr: a, Port: port}, Scheduler: sched, Netmask: 0xffffffff}
}

func dst(last byte, w int32) ipvs.Destination {
	return ipvs.Destination{DestKey: ipvs.DestKey{Addr: netip.AddrFrom4([4]byte{10, 0, 0, last}), Port: 80}, Forward: ipvs.Route, Weight: w}
}

// A batch naming a missing module is refused before anything is sent,
// like ipvs.Client does after modprobe fails.
func TestMissingModuleSendsNothing(t *testing.T) {
	k := New()
	ops := []ipvs.Op{
		{Kind: ipvs.AddService, Service: svc(80, "rr")},
		{Kind: ipvs.AddService, Service: svc(81, "twos")},
	}
	err := k.Apply(context.Background(), ops)
	var oe *ipvs.OpError
	if !errors.As(err, &oe) || oe.Index != 1 || oe.Sent != 0 || !errors.Is(err, ipvs.ErrModule) {
		t.Fatalf("err = %#v", err)
	}
	if k.String() != "" || k.Counts().Ops != 0 {
		t.Fatalf("something was applied:\n%s", k)
	}
	k.SetModule(ipvs.SchedulerModule("twos"), true)
	if err := k.Apply(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
}

// Within one datagram the kernel goes on after a failed operation: the
// later operations take effect; the batch then stops.
func TestFailureInsideADatagram(t *testing.T) {
	k := New()
	web := svc(80, "wlc")
	k.Run(ipvs.Op{Kind: ipvs.AddService, Service: web})
	ops := []ipvs.Op{
		{Kind: ipvs.AddDest, Service: web, Dest: dst(11, 1)},
		{Kind: ipvs.EditDest, Service: web, Dest: dst(99, 1)}, // no such server
		{Kind: ipvs.AddDest, Service: web, Dest: dst(12, 1)},
	}
	// A second datagram that must not be sent.
	for i := range Batch {
		ops = append(ops, ipvs.Op{Kind: ipvs.AddDest, Service: web, Dest: dst(byte(13+i%200), 1)})
	}
	err := k.Apply(context.Background(), ops)
	var oe *ipvs.OpError
	if !errors.As(err, &oe) || oe.Index != 1 || oe.Sent != Batch || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("err = %v (%#v)", err, oe)
	}
	got := k.String()
	if !strings.Contains(got, "-r 10.0.0.11:80") || !strings.Contains(got, "-r 10.0.0.12:80") {
		t.Errorf("the operations around the failure did not take effect:\n%s", got)
	}
}

// FailOp injects a refusal; Hold makes a call hang until its context ends.
func TestInjectedFailureAndHold(t *testing.T) {
	k := New()
	k.FailOp(0, ErrInjected)
	err := k.Apply(context.Background(), []ipvs.Op{{Kind: ipvs.AddService, Service: svc(80, "rr")}})
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("err = %v", err)
	}
	release := k.Hold()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := k.Table(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held Table: %v", err)
	}
	release()
	if _, err := k.Table(context.Background()); err != nil {
		t.Fatal(err)
	}
}
