package feedback

import (
	"fmt"
	"math"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// Decision is what the controller asks for one real server.
type Decision struct {
	// Weight is the weight feedback asks for: the configured weight times
	// the reported capacity (or the agent's weight:N), smoothed, limited
	// per poll and clamped to [min_weight, max_weight]; the configured
	// weight itself while the agent is stale or before it first answers.
	// It does not include Admin and AgentDown, which the caller applies.
	Weight int
	// Capacity is Weight relative to the configured weight (1 = the
	// configured weight).
	Capacity float64
	// Admin is the agent's administrative state: ready, drain or maint.
	Admin agentcheck.Admin
	// AgentDown: the agent announced down, fail or stopped and the
	// service counts that as a failed health check (agent_health).
	AgentDown bool
	// Stale: no good reply for stale_after.
	Stale bool
	// Reason tells why the last change was made.
	Reason string
}

// Effective is the weight this decision alone gives: 0 for drain, maint
// or an agent reporting down (with agent_health), Weight otherwise. The
// director's own health checks come first (see the package doc).
func (d Decision) Effective() int {
	if d.AgentDown || d.Admin == agentcheck.AdminDrain || d.Admin == agentcheck.AdminMaint {
		return 0
	}
	return d.Weight
}

// Controller turns an agent's replies into a weight for one real server
// of one virtual service. It is pure: time comes in with each
// observation, and nothing is written anywhere.
type Controller struct {
	spec       Spec
	configured int

	cur      Decision
	smoothed float64 // smoothed capacity ratio
	target   float64 // last capacity ratio the agent reported
	pending  int     // sign of an unconfirmed level shift
	prevTgt  float64 // the capacity the previous reply reported
	lastGood time.Time
	since    time.Time // start, for an agent that never answered
	health   agentcheck.Health

	// balance mode (see Balance)
	pool *Pool
	est  loadEstimate
	hist []weightChange
}

// NewController starts a controller at the configured weight. spec must
// have passed Validate.
func NewController(spec Spec, configured int, now time.Time) *Controller {
	c := &Controller{spec: spec, configured: configured, smoothed: 1, target: 1, since: now}
	c.cur = Decision{Weight: configured, Capacity: 1, Admin: agentcheck.AdminReady, Reason: "configured weight"}
	return c
}

// Decision returns the current decision.
func (c *Controller) Decision() Decision { return c.cur }

// Configured returns the configured weight.
func (c *Controller) Configured() int { return c.configured }

// Observe feeds one good reply received at now. It returns the new
// decision and whether it differs from the previous one in a way the
// kernel must see: a weight change beyond the dead band, or a change of
// admin state, agent health or staleness.
func (c *Controller) Observe(r agentcheck.Reply, now time.Time) (Decision, bool) {
	prev := c.cur
	first := c.lastGood.IsZero() && !prev.Stale
	c.lastGood = now
	next := prev
	next.Stale = false
	var why []string
	if prev.Stale {
		why = append(why, "agent answers again")
	}
	if r.Admin != agentcheck.AdminNone {
		next.Admin = r.Admin
		if r.Admin != prev.Admin {
			why = append(why, "agent reports "+r.Admin.String())
		}
	}
	if r.Health != agentcheck.HealthNone {
		c.health = r.Health
	}
	next.AgentDown = c.spec.AgentHealth && c.health.Failed()
	if next.AgentDown != prev.AgentDown {
		if next.AgentDown {
			why = append(why, "agent reports "+c.health.String())
		} else {
			why = append(why, "agent reports up")
		}
	}
	if c.pool != nil {
		if w, limited, detail := c.balanceWeight(r, now, prev.Weight); w != prev.Weight {
			next.Weight, next.Capacity = w, c.ratio(w)
			if limited {
				detail += ", step limited by max_step"
			}
			why = append(why, detail)
		}
		d, changed := c.commit(prev, next, why, now)
		if first {
			c.pool.settle(c, now)
		}
		return d, changed
	}
	switch r.WeightKind {
	case agentcheck.WeightPercent:
		c.target = float64(r.Weight) / 100
	case agentcheck.WeightAbsolute:
		if c.configured > 0 {
			c.target = float64(r.Weight) / float64(c.configured)
		}
	}
	c.smooth()
	c.prevTgt = c.target
	w, limited := c.weight(prev.Weight)
	if w != prev.Weight {
		next.Weight = w
		next.Capacity = c.ratio(w)
		reported := fmt.Sprintf("agent reports %.0f%%", c.target*100)
		if r.WeightKind == agentcheck.WeightAbsolute {
			reported = fmt.Sprintf("agent reports weight:%d", r.Weight)
		}
		switch {
		case limited:
			why = append(why, reported+", step limited by max_step")
		case c.smoothed != c.target:
			why = append(why, fmt.Sprintf("%s, smoothed %.0f%%", reported, c.smoothed*100))
		default:
			why = append(why, reported)
		}
	}
	return c.commit(prev, next, why, now)
}

// balanceWeight is Observe's weight in balance mode: a reply in percent
// is the headroom, turned into a weight by Balance; weight:N is the
// agent's own choice, applied as it is (and the real server's load is
// not known until the next reply in percent).
func (c *Controller) balanceWeight(r agentcheck.Reply, now time.Time, applied int) (w int, limited bool, why string) {
	if c.configured <= 0 {
		return applied, false, ""
	}
	switch r.WeightKind {
	case agentcheck.WeightPercent:
		want, detail, move := c.observeBalance(r.Weight, now)
		if !move {
			return applied, false, ""
		}
		w, limited = c.limit(want, applied)
		return w, limited, fmt.Sprintf("agent reports %d%% headroom, %s", r.Weight, detail)
	case agentcheck.WeightAbsolute:
		c.est = loadEstimate{}
		w, limited = c.limit(r.Weight, applied)
		return w, limited, fmt.Sprintf("agent reports weight:%d", r.Weight)
	}
	return applied, false, ""
}

// Fail records a poll that gave no good reply at now. Once no good reply
// has come for stale_after, the agent is stale and the configured weight
// applies: losing the agent is not a failure of the server.
func (c *Controller) Fail(now time.Time, cause error) (Decision, bool) {
	prev := c.cur
	last := c.lastGood
	if last.IsZero() {
		last = c.since
	}
	if prev.Stale || now.Sub(last) < c.spec.StaleAfter.D() {
		return prev, false
	}
	c.smoothed, c.target, c.pending, c.health = 1, 1, 0, agentcheck.HealthNone
	c.est = loadEstimate{}
	next := Decision{Weight: c.configured, Capacity: 1, Admin: agentcheck.AdminReady, Stale: true}
	why := fmt.Sprintf("agent stale: no good reply for %s", c.spec.StaleAfter)
	if cause != nil {
		why += " (" + cause.Error() + ")"
	}
	return c.commit(prev, next, []string{why + ": configured weight"}, now)
}

func (c *Controller) commit(prev, next Decision, why []string, now time.Time) (Decision, bool) {
	changed := next.Weight != prev.Weight || next.Admin != prev.Admin ||
		next.AgentDown != prev.AgentDown || next.Stale != prev.Stale
	if !changed {
		return prev, false
	}
	next.Reason = joinReasons(why)
	c.cur = next
	if c.pool != nil {
		c.record(now)
	}
	return next, true
}

func joinReasons(why []string) string {
	s := ""
	for i, w := range why {
		if i > 0 {
			s += "; "
		}
		s += w
	}
	return s
}

// smooth moves the smoothed capacity towards the reported one. Small
// moves are smoothed (EWMA); a move of more than twice the dead band is
// a level shift: the first reply is smoothed like any other, and when
// the next reply confirms it (same direction, still beyond) the smoothed
// value takes the reported one at once, provided both replies agree
// within the dead band. So noise and the swings of a loop (the weight
// moves the load, which moves the report) are damped, while a real change
// is followed within two polls.
func (c *Controller) smooth() {
	alpha := *c.spec.Smoothing
	d := c.target - c.smoothed
	shift := 2 * float64(*c.spec.DeadBand)
	sign := 0
	if d > 0 {
		sign = 1
	} else if d < 0 {
		sign = -1
	}
	switch {
	case math.Abs(d) <= shift:
		c.smoothed += (1 - alpha) * d
		c.pending = 0
	case c.pending == sign && math.Abs(c.target-c.prevTgt) <= float64(*c.spec.DeadBand):
		// Two replies agree on a new level: take it.
		c.smoothed = c.target
		c.pending = 0
	default:
		c.smoothed += (1 - alpha) * d
		c.pending = sign
	}
	// No wind-up beyond the clamp: a long 300% must not delay the next
	// drop.
	if c.configured > 0 {
		conf := float64(c.configured)
		c.smoothed = min(max(c.smoothed, float64(c.spec.MinWeight)/conf), float64(c.spec.MaxWeight)/conf)
	}
}

// weight returns the weight to apply given the applied one: the smoothed
// capacity times the configured weight, clamped, unchanged within the
// dead band, and moved by at most max_step. limited reports a cut step.
func (c *Controller) weight(applied int) (w int, limited bool) {
	if c.configured <= 0 {
		return 0, false
	}
	conf := float64(c.configured)
	want := int(math.Round(conf * c.smoothed))
	want = int(min(max(int64(want), c.spec.MinWeight), c.spec.MaxWeight))
	diff := want - applied
	if diff == 0 || math.Abs(float64(diff)) <= float64(*c.spec.DeadBand)*conf {
		// Within the dead band, unless the applied weight lies outside
		// the clamp (a changed configuration).
		if int64(applied) >= c.spec.MinWeight && int64(applied) <= c.spec.MaxWeight {
			return applied, false
		}
	}
	return c.limit(want, applied)
}

// limit clamps want to [min_weight, max_weight] and moves from applied
// by at most max_step of the configured weight. limited reports a cut
// step.
func (c *Controller) limit(want, applied int) (w int, limited bool) {
	want = int(min(max(int64(want), c.spec.MinWeight), c.spec.MaxWeight))
	step := max(1, int(math.Round(float64(*c.spec.MaxStep)*float64(c.configured))))
	switch diff := want - applied; {
	case diff > step:
		return applied + step, true
	case diff < -step:
		return applied - step, true
	}
	return want, false
}

func (c *Controller) ratio(w int) float64 {
	if c.configured <= 0 {
		return 0
	}
	return float64(w) / float64(c.configured)
}
