package director

import "testing"

// TestInputChangeLeavesSysctlsToResyncs: an input change writes no
// sysctl (they depend on the configuration alone); a sysctl changed by
// hand is put back by the next resync, which reads the kernel.
func TestInputChangeLeavesSysctlsToResyncs(t *testing.T) {
	r := newRig(t)
	cfg := r.config(t, "virtual_services:\n  - {name: a, vip: 10.0.0.100, port: 80, forwarding: nat, real_servers: [{address: 10.1.0.11, weight: 100}]}\n")
	r.apply(t, cfg)
	if r.s.vals["net/ipv4/ip_forward"] != "1" {
		t.Fatalf("NAT did not turn forwarding on:\n%s", r.s)
	}
	before := r.s.sets
	ref := cfg.VirtualServices[0].ref(0)
	ops, err := r.engine.SetFeedback(t.Context(), map[ServerRef]*Feedback{ref: {Capacity: 0.5}})
	if err != nil || len(ops) != 1 {
		t.Fatalf("SetFeedback: %v, %v", formatOps(ops), err)
	}
	if r.s.sets != before {
		t.Errorf("an input change wrote %d sysctls", r.s.sets-before)
	}
	r.s.vals["net/ipv4/ip_forward"] = "0"
	if _, err := r.engine.Resync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.s.vals["net/ipv4/ip_forward"] != "1" {
		t.Errorf("the resync did not put forwarding back:\n%s", r.s)
	}
}
