package ipvs

import (
	"fmt"
	"testing"
)

func TestNeededModules(t *testing.T) {
	svc := func(sched, pe string) Service { return Service{Scheduler: sched, PE: pe} }
	ops := []Op{
		{Kind: DelService, Service: svc("lblc", "")},
		{Kind: AddService, Service: svc("wlc", "")},
		{Kind: AddDest, Service: svc("mh", "")},
		{Kind: EditService, Service: svc("mh", "sip")},
		{Kind: AddService, Service: svc("wlc", "sip")},
		{Kind: AddService, Service: svc("", "")},
	}
	got := fmt.Sprint(NeededModules(ops))
	want := "[{ip_vs_wlc scheduler wlc 1} {ip_vs_mh scheduler mh 3} {ip_vs_pe_sip persistence engine sip 3}]"
	if got != want {
		t.Fatalf("NeededModules = %s\nwant            %s", got, want)
	}
	if n := NeededModules(nil); len(n) != 0 {
		t.Fatalf("NeededModules(nil) = %v", n)
	}
}
