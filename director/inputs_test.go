package director

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

func TestEffectiveWeight(t *testing.T) {
	up := &Health{State: Up}
	down := &Health{State: Down, Reason: "HTTP 503 after 3 checks"}
	pending := &Health{State: Pending}
	drained := &Override{Drain: true}
	fb := func(a Admin, c float64) *Feedback { return &Feedback{Admin: a, Capacity: c} }
	quiesce := WeightRule{OnFailure: Quiesce, MaxWeight: 1000}
	remove := WeightRule{OnFailure: Remove, MaxWeight: 1000}
	checked := WeightRule{OnFailure: Quiesce, Checked: true, MaxWeight: 1000}
	bounded := WeightRule{MinWeight: 5, MaxWeight: 150}
	for _, tc := range []struct {
		name string
		w    int32
		in   ServerInputs
		rule WeightRule
		want string // weight present reason
	}{
		{"no inputs", 100, ServerInputs{}, quiesce, "100 true "},
		{"up", 100, ServerInputs{Health: up}, quiesce, "100 true "},
		{"down quiesced", 100, ServerInputs{Health: down}, quiesce, "0 true down: HTTP 503 after 3 checks"},
		{"down removed", 100, ServerInputs{Health: down}, remove, "0 false down: HTTP 503 after 3 checks"},
		{"pending is not up", 100, ServerInputs{Health: pending}, quiesce, "0 true pending"},
		{"checked without verdict", 100, ServerInputs{}, checked, "0 true pending: no health verdict yet"},
		{"unchecked without verdict", 100, ServerInputs{}, quiesce, "100 true "},
		{"down beats drain and capacity", 100, ServerInputs{Health: down, Override: drained, Feedback: fb(Ready, 0.5)}, quiesce, "0 true down: HTTP 503 after 3 checks"},
		{"operator drain", 100, ServerInputs{Health: up, Override: drained}, quiesce, "0 true drained by the operator"},
		{"lifted override", 100, ServerInputs{Override: &Override{}}, quiesce, "100 true "},
		{"agent drain", 100, ServerInputs{Feedback: fb(Drain, 1)}, quiesce, "0 true agent: drain"},
		{"agent maint", 100, ServerInputs{Feedback: fb(Maint, math.NaN())}, quiesce, "0 true agent: maint"},
		{"operator drain beats agent", 100, ServerInputs{Override: drained, Feedback: fb(Maint, 1)}, quiesce, "0 true drained by the operator"},
		{"capacity", 100, ServerInputs{Feedback: fb(Ready, 0.25)}, quiesce, "25 true capacity 25%"},
		{"capacity rounds", 7, ServerInputs{Feedback: fb(Ready, 0.5)}, quiesce, "4 true capacity 50%"},
		{"full capacity is the configured weight", 100, ServerInputs{Feedback: fb(Ready, 1)}, quiesce, "100 true "},
		{"no capacity reported", 100, ServerInputs{Feedback: fb(Ready, NoCapacity())}, quiesce, "100 true "},
		{"clamped low", 100, ServerInputs{Feedback: fb(Ready, 0.01)}, bounded, "5 true capacity 1%"},
		{"clamped high", 100, ServerInputs{Feedback: fb(Ready, 3)}, bounded, "150 true capacity 300%"},
		{"negative capacity is zero, then clamped", 100, ServerInputs{Feedback: fb(Ready, -1)}, bounded, "5 true capacity -100%"},
		{"configured zero stays zero", 0, ServerInputs{Feedback: fb(Ready, 0.5)}, bounded, "0 true "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := EffectiveWeight(tc.w, tc.in, tc.rule)
			if got := fmt.Sprintf("%d %t %s", e.Weight, e.Present, e.Reason); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// ref names a real server of the twoServices configuration.
func ref(service, addr string, port uint16) ServerRef {
	return ServerRef{Service: service, Addr: netip.MustParseAddr(addr), Port: port}
}

// TestInputChangeWritesOnlyItsDestinations: a health, feedback or override
// change writes the destinations whose weight it changes, one operation
// each, in one batch and without reading the table; a repeated verdict
// writes nothing; a resync re-applies the inputs, not the configured
// weights.
func TestInputChangeWritesOnlyItsDestinations(t *testing.T) {
	r := newRig(t)
	r.apply(t, r.config(t, twoServices))
	before := r.k.Counts()
	ops, err := r.engine.SetHealth(t.Context(), map[ServerRef]Health{
		ref("web", "10.0.0.12", 80): {State: Down, Reason: "connect: connection refused"},
		ref("web", "10.0.0.11", 80): {State: Up},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := formatOps(ops); got != "-e -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 0" {
		t.Errorf("ops: %s", got)
	}
	after := r.k.Counts()
	if after.Ops-before.Ops != 1 || after.Calls-before.Calls != 1 || after.Tables != before.Tables {
		t.Errorf("counts before %+v after %+v", before, after)
	}
	// The same verdict again writes nothing.
	if ops, err := r.engine.SetHealth(t.Context(), map[ServerRef]Health{ref("web", "10.0.0.12", 80): {State: Down, Reason: "timeout"}}); err != nil || len(ops) != 0 {
		t.Errorf("repeated verdict: %s, %v", formatOps(ops), err)
	}
	// Feedback on another server: one op.
	ops, err = r.engine.SetFeedback(t.Context(), map[ServerRef]*Feedback{ref("web", "10.0.0.11", 80): {Capacity: 0.25}})
	if err != nil || formatOps(ops) != "-e -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 25" {
		t.Errorf("feedback: %s, %v", formatOps(ops), err)
	}
	// An operator drain of api's only server.
	ops, err = r.engine.SetOverride(t.Context(), ref("api", "10.1.0.11", 9000), true)
	if err != nil || formatOps(ops) != "-e -t 10.0.0.100:8080 -r 10.1.0.11:9000 -m -w 0" {
		t.Errorf("override: %s, %v", formatOps(ops), err)
	}
	if _, err := r.engine.SetOverride(t.Context(), ref("api", "10.9.9.9", 9000), true); err == nil {
		t.Error("an override of an unknown real server was accepted")
	}
	want := "-A -t 10.0.0.100:80 -s wlc\n" +
		"-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 25\n" +
		"-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 0\n" +
		"-A -t 10.0.0.100:8080 -s rr\n" +
		"-a -t 10.0.0.100:8080 -r 10.1.0.11:9000 -m -w 0\n"
	r.expectKernel(t, want)
	// A resync finds nothing to repair: the inputs are part of what it
	// wants. Drift is repaired to the effective weight.
	if n, err := r.engine.Resync(t.Context()); n != 0 || err != nil {
		t.Errorf("resync: %d, %v", n, err)
	}
	r.k.Run(ipvs.Op{Kind: ipvs.EditDest, Service: svc("10.0.0.100", 80, "wlc"), Dest: dest("10.0.0.12", 80, 100).Destination})
	if n, err := r.engine.Resync(t.Context()); n != 1 || err != nil {
		t.Errorf("resync after drift: %d, %v", n, err)
	}
	r.expectKernel(t, want)
	// A reload of the same file keeps the inputs.
	if ops, err := r.engine.Reload(t.Context(), r.config(t, twoServices)); err != nil || len(ops) != 0 {
		t.Errorf("reload: %s, %v", formatOps(ops), err)
	}
	// The override survives a restart; health and feedback come back from
	// their sources.
	r.restart()
	r.apply(t, r.config(t, twoServices))
	if !strings.Contains(r.k.String(), "-r 10.1.0.11:9000 -m -w 0\n") {
		t.Errorf("the operator's drain did not survive a restart:\n%s", r.k)
	}
	ops, err = r.engine.SetOverride(t.Context(), ref("api", "10.1.0.11", 9000), false)
	if err != nil || formatOps(ops) != "-e -t 10.0.0.100:8080 -r 10.1.0.11:9000 -m -w 1" {
		t.Errorf("ready: %s, %v", formatOps(ops), err)
	}
}

// TestInputsBeforeFirstApply: inputs set before any configuration is in
// force are applied by the first reconciliation.
func TestInputsBeforeFirstApply(t *testing.T) {
	r := newRig(t)
	if ops, err := r.engine.SetHealth(t.Context(), map[ServerRef]Health{ref("web", "10.0.0.11", 80): {State: Down}}); err != nil || len(ops) != 0 {
		t.Fatalf("%s, %v", formatOps(ops), err)
	}
	r.apply(t, r.config(t, twoServices))
	if !strings.Contains(r.k.String(), "-r 10.0.0.11:80 -g -w 0\n") {
		t.Errorf("kernel:\n%s", r.k)
	}
}

// directorState is one state of the director: a configuration and inputs.
type directorState struct {
	name   string
	body   string
	health map[ServerRef]Health
	feed   map[ServerRef]*Feedback
}

// TestStatesInRandomOrder applies states in random orders to one engine
// and checks after each that the kernel holds exactly what a fresh engine
// applying that state alone makes of an empty kernel.
func TestStatesInRandomOrder(t *testing.T) {
	down := Health{State: Down, Reason: "refused"}
	up := Health{State: Up}
	webDown := map[ServerRef]Health{ref("web", "10.0.0.12", 80): down, ref("web", "10.0.0.11", 80): up}
	allUp := map[ServerRef]Health{ref("web", "10.0.0.12", 80): up, ref("web", "10.0.0.11", 80): up}
	states := []directorState{
		{name: "base", body: twoServices, health: allUp, feed: map[ServerRef]*Feedback{ref("web", "10.0.0.11", 80): nil}},
		{name: "web down", body: twoServices, health: webDown, feed: map[ServerRef]*Feedback{ref("web", "10.0.0.11", 80): nil}},
		{name: "weight and capacity", body: webWeight(40), health: allUp, feed: map[ServerRef]*Feedback{ref("web", "10.0.0.11", 80): {Capacity: 0.5}}},
		{name: "down and half", body: webWeight(60), health: webDown, feed: map[ServerRef]*Feedback{ref("web", "10.0.0.11", 80): {Capacity: 0.5}}},
		{name: "api gone", body: twoServices[:strings.Index(twoServices, "  - name: api")], health: allUp, feed: map[ServerRef]*Feedback{ref("web", "10.0.0.11", 80): {Admin: Drain, Capacity: 1}}},
		{name: "third server", body: strings.Replace(twoServices, "      - {address: 10.0.0.12, weight: 100}\n", "      - {address: 10.0.0.12, weight: 100}\n      - {address: 10.0.0.13, weight: 30}\n", 1), health: webDown, feed: map[ServerRef]*Feedback{ref("web", "10.0.0.11", 80): nil}},
	}
	want := map[string]string{}
	for _, s := range states {
		r := newRig(t)
		setState(t, r, s)
		want[s.name] = r.k.String()
	}
	seen := map[string]bool{}
	for _, w := range want {
		seen[w] = true
	}
	if len(seen) != len(states) {
		t.Fatalf("the states do not give %d different tables", len(states))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		r := newRig(t)
		for _, i := range rnd.Perm(len(states)) {
			s := states[i]
			setState(t, r, s)
			if got := r.k.String(); got != want[s.name] {
				t.Fatalf("round %d, state %q:\n%s\nwant:\n%s", round, s.name, got, want[s.name])
			}
		}
	}
}

// setState brings the rig's engine to s: its inputs, then its file.
func setState(t *testing.T, r *rig, s directorState) {
	t.Helper()
	if _, err := r.engine.SetHealth(t.Context(), s.health); err != nil {
		t.Fatal(err)
	}
	if _, err := r.engine.SetFeedback(t.Context(), s.feed); err != nil {
		t.Fatal(err)
	}
	if _, err := r.engine.Reload(t.Context(), r.config(t, s.body)); err != nil {
		t.Fatal(err)
	}
}
