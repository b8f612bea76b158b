package feedback

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// step is one poll: a reply line, or "" for a failed poll.
type step struct {
	at      int // seconds since start
	reply   string
	weight  int
	changed bool
	admin   agentcheck.Admin // 0: ready
	down    bool
	stale   bool
	reason  string // a substring of the reason, when changed
}

func spec(mod func(*Spec)) Spec {
	var s Spec
	if mod != nil {
		mod(&s)
	}
	if errs := s.Validate(nil, ""); len(errs) > 0 {
		panic(errs)
	}
	return s
}

func f(v float64) *float64  { return &v }
func pc(v float64) *Percent { p := Percent(v); return &p }

func TestController(t *testing.T) {
	tests := []struct {
		name       string
		spec       Spec
		configured int
		steps      []step
	}{
		{"follows 25% within two polls", spec(nil), 100, []step{
			{at: 2, reply: "up ready 25%", weight: 63, changed: true, reason: "agent reports 25%, smoothed 62%"},
			{at: 4, reply: "up ready 25%", weight: 25, changed: true, reason: "agent reports 25%"},
			{at: 6, reply: "up ready 25%", weight: 25},
		}},
		{"noise inside the dead band writes nothing", spec(nil), 100, []step{
			{at: 2, reply: "97%", weight: 100},
			{at: 4, reply: "103%", weight: 100},
			{at: 6, reply: "96%", weight: 100},
			{at: 8, reply: "104%", weight: 100},
		}},
		{"a small lasting change is written once past the dead band", spec(nil), 100, []step{
			{at: 2, reply: "92%", weight: 100}, // smoothed 96
			{at: 4, reply: "92%", weight: 94, changed: true},
			{at: 6, reply: "92%", weight: 94}, // 93: inside the band
		}},
		{"max_step limits one poll", spec(func(s *Spec) { s.Smoothing = f(0) }), 100, []step{
			{at: 2, reply: "10%", weight: 50, changed: true, reason: "step limited by max_step"},
			{at: 4, reply: "10%", weight: 10, changed: true},
			{at: 6, reply: "100%", weight: 60, changed: true},
			{at: 8, reply: "100%", weight: 100, changed: true},
		}},
		{"clamped to max_weight and min_weight", spec(func(s *Spec) { s.MaxWeight = 150; s.MinWeight = 5 }), 100, []step{
			{at: 2, reply: "300%", weight: 150, changed: true},
			{at: 4, reply: "300%", weight: 150},
			{at: 6, reply: "0%", weight: 100, changed: true},
			{at: 8, reply: "0%", weight: 50, changed: true},
			{at: 10, reply: "0%", weight: 5, changed: true},
		}},
		{"weight:N is absolute", spec(nil), 200, []step{
			{at: 2, reply: "weight:50", weight: 125, changed: true, reason: "weight:50"},
			{at: 4, reply: "weight:50", weight: 50, changed: true},
		}},
		{"drain and maint are reported, weight kept for ready", spec(nil), 100, []step{
			{at: 2, reply: "up drain 100%", weight: 100, changed: true, admin: agentcheck.AdminDrain, reason: "agent reports drain"},
			{at: 4, reply: "up 100%", weight: 100, admin: agentcheck.AdminDrain}, // no admin word: unchanged
			{at: 6, reply: "maint", weight: 100, changed: true, admin: agentcheck.AdminMaint},
			{at: 8, reply: "ready", weight: 100, changed: true, reason: "agent reports ready"},
		}},
		{"down is ignored without agent_health", spec(nil), 100, []step{
			{at: 2, reply: "down 100%", weight: 100},
			{at: 4, reply: "fail", weight: 100},
		}},
		{"down counts with agent_health", spec(func(s *Spec) { s.AgentHealth = true }), 100, []step{
			{at: 2, reply: "down 100%", weight: 100, changed: true, down: true, reason: "agent reports down"},
			{at: 4, reply: "100%", weight: 100, down: true},
			{at: 6, reply: "stopped", weight: 100, down: true},
			{at: 8, reply: "up", weight: 100, changed: true, reason: "agent reports up"},
		}},
		{"a stale agent means the configured weight, never 0", spec(nil), 100, []step{
			{at: 2, reply: "up 25%", weight: 63, changed: true},
			{at: 4, reply: "up drain 25%", weight: 25, changed: true, admin: agentcheck.AdminDrain},
			{at: 6, reply: "", weight: 25, admin: agentcheck.AdminDrain},
			{at: 12, reply: "", weight: 25, admin: agentcheck.AdminDrain},
			{at: 14, reply: "", weight: 100, changed: true, stale: true, reason: "agent stale: no good reply for 10s (connection refused): configured weight"},
			{at: 16, reply: "", weight: 100, stale: true},
			{at: 18, reply: "up 100%", weight: 100, changed: true, reason: "agent answers again"},
		}},
		{"stale agent_health down is forgotten", spec(func(s *Spec) { s.AgentHealth = true }), 100, []step{
			{at: 2, reply: "down", weight: 100, changed: true, down: true},
			{at: 12, reply: "", weight: 100, changed: true, stale: true},
			{at: 14, reply: "50%", weight: 75, changed: true},
		}},
		{"an agent that never answers goes stale at the configured weight", spec(nil), 100, []step{
			{at: 2, reply: "", weight: 100},
			{at: 10, reply: "", weight: 100, changed: true, stale: true},
		}},
		{"a reply without a weight keeps the last one", spec(nil), 100, []step{
			{at: 2, reply: "50%", weight: 75, changed: true},
			{at: 4, reply: "up", weight: 50, changed: true},
			{at: 6, reply: "up", weight: 50},
		}},
		{"configured weight 0 stays 0", spec(nil), 0, []step{
			{at: 2, reply: "50%", weight: 0},
		}},
		{"dead band 0 writes each change", spec(func(s *Spec) { s.DeadBand = pc(0); s.Smoothing = f(0) }), 100, []step{
			{at: 2, reply: "99%", weight: 99, changed: true},
			{at: 4, reply: "98%", weight: 98, changed: true},
		}},
	}
	start := time.Unix(1000, 0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewController(tc.spec, tc.configured, start)
			for i, s := range tc.steps {
				now := start.Add(time.Duration(s.at) * time.Second)
				var d Decision
				var changed bool
				if s.reply == "" {
					d, changed = c.Fail(now, errors.New("connection refused"))
				} else {
					r, err := agentcheck.ParseString(s.reply + "\n")
					if err != nil {
						t.Fatal(err)
					}
					d, changed = c.Observe(r, now)
				}
				admin := s.admin
				if admin == 0 {
					admin = agentcheck.AdminReady
				}
				if d.Weight != s.weight || changed != s.changed || d.Admin != admin || d.AgentDown != s.down || d.Stale != s.stale {
					t.Fatalf("step %d (%q at %ds): got weight %d changed %v admin %s down %v stale %v, want %d %v %s %v %v (reason %q)",
						i, s.reply, s.at, d.Weight, changed, d.Admin, d.AgentDown, d.Stale, s.weight, s.changed, admin, s.down, s.stale, d.Reason)
				}
				if s.reason != "" && !strings.Contains(d.Reason, s.reason) {
					t.Fatalf("step %d: reason %q, want it to hold %q", i, d.Reason, s.reason)
				}
				if d != c.Decision() {
					t.Fatalf("step %d: Decision() = %+v, returned %+v", i, c.Decision(), d)
				}
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	d := Defaults()
	if d.Interval.D() != 2*time.Second || d.Timeout.D() != time.Second || d.MinWeight != 1 || d.MaxWeight != 1000 ||
		d.StaleAfter.D() != 10*time.Second || *d.Smoothing != 0.5 || *d.DeadBand != 0.05 || *d.MaxStep != 0.5 || d.Port != 3262 {
		t.Fatalf("defaults: %+v", d)
	}
	bad := []struct {
		mod func(*Spec)
		key string
	}{
		{func(s *Spec) { s.Interval = 1 }, "interval"},
		{func(s *Spec) { s.Timeout = Defaults().Interval }, "timeout"},
		{func(s *Spec) { s.MinWeight = -1 }, "min_weight"},
		{func(s *Spec) { s.MinWeight = 10; s.MaxWeight = 5 }, "max_weight"},
		{func(s *Spec) { s.MaxWeight = 70000 }, "max_weight"},
		{func(s *Spec) { s.StaleAfter = 1 }, "stale_after"},
		{func(s *Spec) { s.Smoothing = f(1) }, "smoothing"},
		{func(s *Spec) { s.DeadBand = pc(0.6) }, "dead_band"},
		{func(s *Spec) { s.MaxStep = pc(0) }, "max_step"},
		{func(s *Spec) { s.TokenFile = "token" }, "token_file"},
	}
	for _, b := range bad {
		var s Spec
		b.mod(&s)
		errs := s.Validate(nil, "feedback")
		if len(errs) != 1 || errs[0].Path != "feedback."+b.key {
			t.Errorf("%s: got %v", b.key, errs)
		}
	}
	var p Percent
	if err := p.UnmarshalText([]byte("12.5%")); err != nil || p != 0.125 {
		t.Errorf("12.5%%: %v %v", p, err)
	}
	for _, s := range []string{"5", "x%", "NaN%", ""} {
		if err := p.UnmarshalText([]byte(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
