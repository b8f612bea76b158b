package healthz

import (
	"strings"
	"testing"
)

func TestMachine(t *testing.T) {
	// Each step is P (pass) or F (fail, "HTTP 503"); states gives the
	// state after each step: u unknown, U up, D down.
	for _, c := range []struct {
		name       string
		rise, fall int
		seed       State
		steps      string
		states     string
		reasons    []string // of the transitions, in order
	}{
		{"new target waits for rise", 2, 3, StateUnknown, "PP", "uU", []string{"up: HTTP 200 after 2 checks"}},
		{"a failure restarts the count", 2, 3, StateUnknown, "PFPP", "uuuU", []string{"up: HTTP 200 after 2 checks"}},
		{"never up, then down", 2, 3, StateUnknown, "FFF", "uuD", []string{"down: HTTP 503 after 3 checks"}},
		{"up then fall", 2, 3, StateUnknown, "PPFFF", "uUUUD", []string{"up: HTTP 200 after 2 checks", "down: HTTP 503 after 3 checks"}},
		{"no flap on isolated failures", 2, 3, StateUnknown, "PPFFPFFP", "uUUUUUUU", []string{"up: HTTP 200 after 2 checks"}},
		{"no flap on isolated passes", 2, 3, StateDown, "PFPFPF", "DDDDDD", nil},
		{"down back up after rise", 3, 1, StateUp, "FPPP", "DDDU", []string{"down: HTTP 503 after 1 check", "up: HTTP 200 after 3 checks"}},
		{"restored up stays up", 2, 3, StateUp, "PFFP", "UUUU", nil},
		{"restored up goes down after fall", 2, 3, StateUp, "FFF", "UUD", []string{"down: HTTP 503 after 3 checks"}},
		{"rise and fall of one", 1, 1, StateUnknown, "PFP", "UDU", []string{"up: HTTP 200 after 1 check", "down: HTTP 503 after 1 check", "up: HTTP 200 after 1 check"}},
		{"long run of failures is one transition", 1, 2, StateUp, "FFFFF", "UDDDD", []string{"down: HTTP 503 after 2 checks"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := NewMachine(c.rise, c.fall, c.seed)
			var reasons []string
			var states strings.Builder
			for _, s := range c.steps {
				r := Result{OK: true, Reason: "HTTP 200"}
				if s == 'F' {
					r = Result{Kind: KindStatus, Reason: "HTTP 503"}
				}
				from, changed := m.Observe(r)
				if changed {
					if from == m.State() {
						t.Errorf("a transition from %s to itself", from)
					}
					reasons = append(reasons, m.Reason())
				}
				states.WriteByte(map[State]byte{StateUnknown: 'u', StateUp: 'U', StateDown: 'D'}[m.State()])
			}
			if states.String() != c.states {
				t.Errorf("states %s, want %s", states.String(), c.states)
			}
			if strings.Join(reasons, "|") != strings.Join(c.reasons, "|") {
				t.Errorf("transitions %q, want %q", reasons, c.reasons)
			}
		})
	}
}

func TestMachineProgressReason(t *testing.T) {
	m := NewMachine(3, 2, StateUnknown)
	m.Observe(Result{OK: true, Reason: "connected"})
	if got := m.Reason(); got != "unknown: 1 of 3 passing checks (connected)" {
		t.Errorf("reason %q", got)
	}
	var s State
	for _, w := range []string{"up", "down", "unknown"} {
		if err := s.UnmarshalText([]byte(w)); err != nil || s.String() != w {
			t.Errorf("state %q round trip: %v %v", w, s, err)
		}
	}
	if err := s.UnmarshalText([]byte("sideways")); err == nil {
		t.Error("a bad state was read")
	}
}
