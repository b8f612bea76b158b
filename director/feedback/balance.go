package feedback

import (
	"fmt"
	"math"
	"slices"
)

// Modes of a feedback block: what the agents' percentages mean.
const (
	// ModeCapacity: "N%" is the share of its configured weight the real
	// server asks for, whatever its weight (HAProxy's agent-check
	// meaning). The default.
	ModeCapacity = "capacity"
	// ModeBalance: "N%" is the real server's headroom (100 -
	// utilisation, what the cpu source reports), which its weight moves:
	// the director moves the weights of the service's real servers
	// towards equal headroom.
	ModeBalance = "balance"
)

// Constants of the balance rule.
const (
	// idleUtil: a real server at this utilisation or less tells nothing
	// about its capacity.
	idleUtil = 0.05
	// noiseBands: a real server moves only when its utilisation is
	// further from the pool's at balance than this many standard errors
	// of its measured utilisation.
	noiseBands = 2
)

// Member is one real server of a service in balance mode as the balance
// rule sees it.
type Member struct {
	// Configured is the configured weight.
	Configured int
	// Weight is the weight feedback applies now.
	Weight int
	// Share is the share of the service's traffic the real server is
	// given now: its effective weight over the sum of those of the
	// service's real servers (0 while drained, in maintenance or down by
	// its agent).
	Share float64
	// Load is the measured utilisation per unit of share (utilisation /
	// Share, with utilisation = 1 - reported headroom), averaged over
	// the replies: proportional to the offered load over the real
	// server's capacity, and so the same whatever its weight.
	Load float64
	// Known: Load was measured (a reply in percent while the real server
	// took traffic, since it was last stale).
	Known bool
	// Pending: the agent has not answered yet and is not stale: the pool
	// waits for its first reply.
	Pending bool
	// Noise is the standard deviation of one reply's utilisation
	// (a fraction, 0.01 = 1 point), estimated from the replies; 0 while
	// unknown.
	Noise float64
	// Spread is the variance of Load over that of one reply: 1 after one
	// reply, about 1/n after n.
	Spread float64
}

// Util is the utilisation the member has at its share now (Share x Load).
func (m Member) Util() float64 { return m.Share * m.Load }

// Balance is the rule of balance mode for member i of a service's pool.
// It returns the weight to ask for and why, or move=false to keep
// m.Weight. deadBand is dead_band (a share of the applied weight here).
//
//   - Nothing moves while a member is Pending: the first moves see the
//     whole pool.
//   - A member whose Load is not known keeps its weight.
//   - A member at a utilisation of 5 % or less tells nothing about its
//     capacity (it takes no traffic, or too little to measure): below
//     its configured weight it goes back to it, otherwise it keeps its
//     weight.
//   - The others are the pool P. Each member's capacity, in the units of
//     the offered load, is 1/Load; the utilisation every member of P
//     would have with weights in proportion to capacity is
//     u* = sum(Share) / sum(1/Load). A member keeps its weight while its
//     utilisation is within 2 standard errors of u* (the noise of one
//     reply, the median over P of the known Noise, times sqrt(Spread);
//     0 while no member's noise is known): noise writes nothing,
//     and the band narrows as the replies add up. Beyond it, the member
//     asks for its capacity's part of the pool's configured weights,
//     sum(Configured) x (1/Load_i) / sum(1/Load), which puts it at u*:
//     a move starts beyond the band and aims at the middle (hysteresis).
//     The weights of P so keep the sum of their configured weights, and
//     a change of the offered load (every Load alike) moves nothing.
//   - A move by deadBand of the applied weight or less is not made (the
//     utilisation is within deadBand of u*, relatively).
//
// The caller clamps to [min_weight, max_weight] and limits the step
// (max_step), which bounds the correction.
func Balance(pool []Member, i int, deadBand float64) (want int, why string, move bool) {
	m := pool[i]
	if !m.Known {
		return m.Weight, "", false
	}
	for _, o := range pool {
		if o.Pending {
			return m.Weight, "", false
		}
	}
	if m.Util() <= idleUtil {
		if m.Weight < m.Configured {
			return m.Configured, fmt.Sprintf("utilisation %.0f%%: too little to measure, configured weight", m.Util()*100), true
		}
		return m.Weight, "", false
	}
	var share, capacity, configured float64
	var noises []float64
	for _, o := range pool {
		if !o.Known || o.Util() <= idleUtil {
			continue
		}
		share += o.Share
		capacity += 1 / o.Load
		configured += float64(o.Configured)
		if o.Noise > 0 {
			noises = append(noises, o.Noise)
		}
	}
	noise := 0.0
	if len(noises) > 0 {
		slices.Sort(noises)
		noise = noises[len(noises)/2]
	}
	ref := share / capacity
	if math.Abs(m.Util()-ref) <= noiseBands*noise*math.Sqrt(m.Spread) {
		return m.Weight, "", false
	}
	want = int(math.Round(configured / m.Load / capacity))
	if math.Abs(float64(want-m.Weight)) <= deadBand*float64(m.Weight) {
		return m.Weight, "", false
	}
	return want, fmt.Sprintf("utilisation %.0f%%, pool at balance %.0f%%", m.Util()*100, ref*100), true
}
