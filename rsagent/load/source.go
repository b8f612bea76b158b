package load

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// Reading is what one source reports.
type Reading struct {
	// Capacity in percent, 0-100, when HasCapacity.
	Capacity    float64
	HasCapacity bool
	// Health and Admin words given by command, file and http sources.
	Health agentcheck.Health
	Admin  agentcheck.Admin
}

// Source gives one reading. Read must return when ctx is done.
type Source interface {
	Read(ctx context.Context) (Reading, error)
}

// ErrNoCapacity: the content names no capacity, health or admin state.
var ErrNoCapacity = errors.New("no capacity in the content")

// maxContent bounds what is read from a command, file or URL.
const maxContent = 4096

func capacity(v float64) Reading {
	return Reading{Capacity: clamp(v), HasCapacity: true}
}

func clamp(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return min(max(v, 0), 100)
}

// ParseContent reads what a command prints, a file holds or a URL
// answers: a number from 0 to 100, optionally followed by %, or an
// agent-check reply (its first line).
func ParseContent(s string) (Reading, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return Reading{}, fmt.Errorf("empty content: %w", ErrNoCapacity)
	}
	num := strings.TrimSuffix(t, "%")
	if v, err := strconv.ParseFloat(num, 64); err == nil {
		if math.IsNaN(v) || v < 0 || v > 100 {
			return Reading{}, fmt.Errorf("capacity %q is outside 0-100", t)
		}
		return capacity(v), nil
	}
	line, _, _ := strings.Cut(t, "\n")
	r, err := agentcheck.ParseString(strings.TrimRight(line, "\r") + "\n")
	if err != nil {
		return Reading{}, fmt.Errorf("want a number from 0 to 100 or an agent-check reply: %w", err)
	}
	out := Reading{Health: r.Health, Admin: r.Admin}
	switch r.WeightKind {
	case agentcheck.WeightPercent:
		out.Capacity, out.HasCapacity = clamp(float64(r.Weight)), true
	case agentcheck.WeightAbsolute:
		return Reading{}, fmt.Errorf("weight:%d is an absolute weight, which a load source cannot give; write N%%", r.Weight)
	}
	if !out.HasCapacity && out.Health == agentcheck.HealthNone && out.Admin == agentcheck.AdminNone {
		return Reading{}, ErrNoCapacity
	}
	return out, nil
}
