package agentcheck

import (
	"fmt"
	"strings"
)

// Health is the health state an agent announces.
type Health uint8

// Health states. HealthNone means the reply names none.
const (
	HealthNone Health = iota
	HealthUp
	HealthDown
	HealthFail
	HealthStopped
)

func (h Health) String() string {
	switch h {
	case HealthUp:
		return "up"
	case HealthDown:
		return "down"
	case HealthFail:
		return "fail"
	case HealthStopped:
		return "stopped"
	}
	return ""
}

// Failed reports whether h announces a failed server (down, fail or
// stopped).
func (h Health) Failed() bool { return h == HealthDown || h == HealthFail || h == HealthStopped }

// Admin is the administrative state an agent announces.
type Admin uint8

// Administrative states. AdminNone means the reply names none.
const (
	AdminNone Admin = iota
	AdminReady
	AdminDrain
	AdminMaint
)

func (a Admin) String() string {
	switch a {
	case AdminReady:
		return "ready"
	case AdminDrain:
		return "drain"
	case AdminMaint:
		return "maint"
	}
	return ""
}

// ParseAdmin returns the state named by s (ready, drain or maint, any
// case).
func ParseAdmin(s string) (Admin, error) {
	switch strings.ToLower(s) {
	case "ready":
		return AdminReady, nil
	case "drain":
		return AdminDrain, nil
	case "maint":
		return AdminMaint, nil
	}
	return AdminNone, fmt.Errorf("want ready, drain or maint, got %q", s)
}

// WeightKind tells how Reply.Weight is to be read.
type WeightKind uint8

// Weight kinds. WeightNone means the reply sets no weight.
const (
	WeightNone WeightKind = iota
	// WeightPercent: Weight is a percentage of the configured weight
	// ("75%", "weight:75%").
	WeightPercent
	// WeightAbsolute: Weight is the weight itself ("weight:50", an
	// lvs-node extension).
	WeightAbsolute
)

// Limits of the values a reply may carry.
const (
	// MaxPercent is HAProxy's cap on a relative weight.
	MaxPercent = 25600
	// MaxWeight bounds an absolute weight (the director's largest weight).
	MaxWeight = 65535
	// MaxMaxConn bounds maxconn.
	MaxMaxConn = 1<<31 - 1
)

// Reply is what an agent answers.
type Reply struct {
	Health Health
	Admin  Admin
	// WeightKind says whether Weight is set and how to read it.
	WeightKind WeightKind
	Weight     int
	// MaxConn is set when HasMaxConn is true.
	MaxConn    int
	HasMaxConn bool
	// Description is the free text after '#'.
	Description string
}

// Percent returns the relative weight in percent, when the reply carries
// one.
func (r Reply) Percent() (int, bool) {
	return r.Weight, r.WeightKind == WeightPercent
}

// WordError is one word of a reply that was not understood.
type WordError struct {
	Word string
	Msg  string
}

// SyntaxError lists the words of a reply that were not understood. The
// words that were understood are in the Reply returned with it.
type SyntaxError struct {
	Words []WordError
}

func (e *SyntaxError) Error() string {
	parts := make([]string, len(e.Words))
	for i, w := range e.Words {
		parts[i] = fmt.Sprintf("%q: %s", w.Word, w.Msg)
	}
	return "agent reply: " + strings.Join(parts, "; ")
}

// Validate checks that r can be written as a reply that reads back the
// same.
func (r Reply) Validate() error {
	switch r.WeightKind {
	case WeightNone:
	case WeightPercent:
		if r.Weight < 0 || r.Weight > MaxPercent {
			return fmt.Errorf("relative weight %d%% is outside 0-%d%%", r.Weight, MaxPercent)
		}
	case WeightAbsolute:
		if r.Weight < 0 || r.Weight > MaxWeight {
			return fmt.Errorf("weight %d is outside 0-%d", r.Weight, MaxWeight)
		}
	default:
		return fmt.Errorf("unknown weight kind %d", r.WeightKind)
	}
	if r.HasMaxConn && (r.MaxConn < 0 || r.MaxConn > MaxMaxConn) {
		return fmt.Errorf("maxconn %d is outside 0-%d", r.MaxConn, MaxMaxConn)
	}
	if r.Health > HealthStopped {
		return fmt.Errorf("unknown health state %d", r.Health)
	}
	if r.Admin > AdminMaint {
		return fmt.Errorf("unknown admin state %d", r.Admin)
	}
	return nil
}
