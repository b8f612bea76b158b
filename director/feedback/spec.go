package feedback

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lvs-node/lvs-node/internal/config"
)

// Defaults of a feedback block.
const (
	DefaultInterval   = 2 * time.Second
	DefaultTimeout    = time.Second
	DefaultMinWeight  = 1
	DefaultMaxWeight  = 1000
	DefaultStaleAfter = 10 * time.Second
	DefaultSmoothing  = 0.5
	DefaultDeadBand   = Percent(0.05)
	DefaultMaxStep    = Percent(0.5)
	DefaultPort       = 3262
	// MaxWeightLimit is the largest weight feedback may set.
	MaxWeightLimit = 65535
)

// Spec is the feedback block of a virtual service:
//
//	feedback: {mode: capacity, interval: 2s, min_weight: 1, max_weight: 1000, stale_after: 10s,
//	           smoothing: 0.5, dead_band: 5%, max_step: 50%, port: 3262}
//
// Validate fills the defaults. Percentages are of the configured weight,
// except dead_band in balance mode (of the applied weight).
type Spec struct {
	// Mode is what the agents' percentages mean: ModeCapacity (the
	// default, HAProxy's meaning) or ModeBalance.
	Mode string `yaml:"mode"`
	// Interval between two polls of an agent.
	Interval config.Duration `yaml:"interval"`
	// Timeout bounds one poll: connecting, sending the token and reading
	// the reply. Less than Interval.
	Timeout config.Duration `yaml:"timeout"`
	// MinWeight and MaxWeight clamp the weight feedback sets. MinWeight is
	// at least 1: feedback never takes a server out (only drain, maint
	// and a failed health check do).
	MinWeight int64 `yaml:"min_weight"`
	MaxWeight int64 `yaml:"max_weight"`
	// StaleAfter is how long without a good reply before the agent is
	// stale and the configured weight applies again.
	StaleAfter config.Duration `yaml:"stale_after"`
	// Smoothing is the share of the previous smoothed capacity kept at
	// each reply (EWMA), in [0, 1): 0 follows every reply. Capacity mode
	// only: balance mode averages its own way (see loadEstimate).
	Smoothing *float64 `yaml:"smoothing"`
	// DeadBand: a weight change smaller than this share of the configured
	// weight is not written (in balance mode: of the applied weight; see
	// Balance).
	DeadBand *Percent `yaml:"dead_band"`
	// MaxStep: the weight moves by at most this share of the configured
	// weight per poll.
	MaxStep *Percent `yaml:"max_step"`
	// Port of the agents (on each real server's address).
	Port uint16 `yaml:"port"`
	// AgentHealth makes down, fail and stopped from the agent count as a
	// failed health check.
	AgentHealth bool `yaml:"agent_health"`
	// TokenFile holds the token sent to the agents, first line.
	TokenFile string `yaml:"token_file"`
}

// Percent is a share written as a percentage ("5%", "12.5%"); the value
// is the fraction (0.05).
type Percent float64

// UnmarshalText reads "N%".
func (p *Percent) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	num, ok := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !ok || err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("want a percentage such as 5%%, got %q", s)
	}
	*p = Percent(v / 100)
	return nil
}

// MarshalText writes "N%".
func (p Percent) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

func (p Percent) String() string { return strconv.FormatFloat(float64(p)*100, 'f', -1, 64) + "%" }

// Validate fills the defaults of s and checks it. path is the key path of
// the block in doc (such as virtual_services[0].feedback); doc may be nil
// for a Spec built in code.
func (s *Spec) Validate(doc *config.Doc, path string) config.Errors {
	var errs config.Errors
	key := func(k string) string { return config.Join(path, k) }
	bad := func(k, format string, args ...any) { errs = append(errs, doc.Errorf(key(k), format, args...)) }
	switch s.Mode {
	case "":
		s.Mode = ModeCapacity
	case ModeCapacity, ModeBalance:
	default:
		bad("mode", "want %s (the agent's percentage is the share of the configured weight, HAProxy's meaning) or %s (the percentage is headroom; weights move towards equal headroom), got %q",
			ModeCapacity, ModeBalance, s.Mode)
	}
	if s.Interval == 0 {
		s.Interval = config.Duration(DefaultInterval)
	} else if s.Interval.D() < 100*time.Millisecond {
		bad("interval", "want at least 100ms, got %s", s.Interval)
	}
	if s.Timeout == 0 {
		s.Timeout = config.Duration(min(DefaultTimeout, s.Interval.D()/2))
	} else if s.Timeout.D() >= s.Interval.D() {
		bad("timeout", "want less than interval (%s), got %s", s.Interval, s.Timeout)
	}
	if s.MinWeight == 0 {
		s.MinWeight = DefaultMinWeight
	} else if s.MinWeight < 1 || s.MinWeight > MaxWeightLimit {
		bad("min_weight", "want 1 to %d (feedback never sets weight 0; drain does), got %d", MaxWeightLimit, s.MinWeight)
	}
	if s.MaxWeight == 0 {
		s.MaxWeight = max(DefaultMaxWeight, s.MinWeight)
	} else if s.MaxWeight < s.MinWeight || s.MaxWeight > MaxWeightLimit {
		bad("max_weight", "want min_weight (%d) to %d, got %d", s.MinWeight, MaxWeightLimit, s.MaxWeight)
	}
	if s.StaleAfter == 0 {
		s.StaleAfter = config.Duration(max(DefaultStaleAfter, 2*s.Interval.D()))
	} else if s.StaleAfter.D() < s.Interval.D() {
		bad("stale_after", "want at least interval (%s), got %s", s.Interval, s.StaleAfter)
	}
	if s.Smoothing == nil {
		v := DefaultSmoothing
		s.Smoothing = &v
	} else if v := *s.Smoothing; !(v >= 0 && v < 1) {
		bad("smoothing", "want a number from 0 (none) to below 1, got %v", v)
	}
	if s.DeadBand == nil {
		v := DefaultDeadBand
		s.DeadBand = &v
	} else if v := *s.DeadBand; v < 0 || v > 0.5 {
		bad("dead_band", "want 0%% to 50%%, got %s", v)
	}
	if s.MaxStep == nil {
		v := DefaultMaxStep
		s.MaxStep = &v
	} else if v := *s.MaxStep; v <= 0 || v > 1 {
		bad("max_step", "want more than 0%% and at most 100%%, got %s", v)
	}
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.TokenFile != "" && !filepath.IsAbs(s.TokenFile) {
		bad("token_file", "want an absolute path, got %q", s.TokenFile)
	}
	return errs
}

// Defaults returns a Spec with every default filled.
func Defaults() Spec {
	var s Spec
	s.Validate(nil, "")
	return s
}

// Duration converts d for a Spec field.
func Duration(d time.Duration) config.Duration { return config.Duration(d) }
