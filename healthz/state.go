package healthz

import (
	"fmt"
	"time"
)

// State is the health of a target.
type State uint8

const (
	// StateUnknown: not checked enough yet; not up.
	StateUnknown State = iota
	StateUp
	StateDown
)

func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	}
	return "unknown"
}

// MarshalText writes the state as up, down or unknown.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads up, down or unknown.
func (s *State) UnmarshalText(b []byte) error {
	switch string(b) {
	case "up":
		*s = StateUp
	case "down":
		*s = StateDown
	case "unknown", "":
		*s = StateUnknown
	default:
		return fmt.Errorf("unknown health state %q (want up, down or unknown)", b)
	}
	return nil
}

// Machine is the rise/fall state machine of one target. A target starts
// unknown (or in the state it is seeded with) and goes up after rise
// passing checks in a row, down after fall failing checks in a row. An
// unknown target that fails fall times goes down, so that status can tell
// why it never came up.
type Machine struct {
	rise, fall int
	state      State
	passes     int // passing checks in a row
	fails      int // failing checks in a row
	since      time.Time
	reason     string
}

// NewMachine returns a machine in state seed. rise and fall below 1 count
// as 1.
func NewMachine(rise, fall int, seed State) *Machine {
	m := &Machine{rise: max(rise, 1), fall: max(fall, 1), state: seed, since: time.Now()}
	switch seed {
	case StateUp:
		m.reason = "up: restored"
	case StateDown:
		m.reason = "down: restored"
	default:
		m.reason = "unknown: not checked yet"
	}
	return m
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Since returns when the current state began.
func (m *Machine) Since() time.Time { return m.since }

// Reason returns why the machine is in its state: the reason of the last
// transition, or progress towards the first one.
func (m *Machine) Reason() string { return m.reason }

// Observe feeds one result. When the state changes it returns the old
// state and true; the new state and its reason are then State and Reason.
func (m *Machine) Observe(r Result) (State, bool) {
	from := m.state
	if r.OK {
		m.passes++
		m.fails = 0
		if m.state != StateUp && m.passes >= m.rise {
			m.set(StateUp, fmt.Sprintf("up: %s after %s", r.Reason, checks(m.passes)), r.At)
			return from, true
		}
		if m.state == StateUnknown {
			m.reason = fmt.Sprintf("unknown: %d of %d passing checks (%s)", m.passes, m.rise, r.Reason)
		}
		return from, false
	}
	m.fails++
	m.passes = 0
	if m.state != StateDown && m.fails >= m.fall {
		m.set(StateDown, fmt.Sprintf("down: %s after %s", r.Reason, checks(m.fails)), r.At)
		return from, true
	}
	if m.state == StateUnknown {
		m.reason = fmt.Sprintf("unknown: %d of %d failing checks (%s)", m.fails, m.fall, r.Reason)
	}
	return from, false
}

func (m *Machine) set(s State, reason string, at time.Time) {
	m.state, m.reason = s, reason
	if at.IsZero() {
		at = time.Now()
	}
	m.since = at
}

func checks(n int) string {
	if n == 1 {
		return "1 check"
	}
	return fmt.Sprintf("%d checks", n)
}
