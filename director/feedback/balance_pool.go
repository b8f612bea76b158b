package feedback

import (
	"math"
	"time"
)

// Pool holds the controllers of one service in balance mode: each sees
// the others' weights and loads.
type Pool struct {
	ctls []*Controller
	// moved are the members whose decision the pool changed on another
	// member's reply (settle), not yet taken by TakeMoved.
	moved []Moved
}

// Moved is a member whose decision the pool changed, with the decision
// it had before.
type Moved struct {
	Ctl  *Controller
	Prev Decision
}

// settle runs when c's reply was its first: if no member waits for its
// first reply any more, every other member gets its Balance decision now
// rather than at its own next reply, so that the first moves see the
// whole pool and happen together, one poll after the last first reply.
// The shares are those from before the moves of now.
func (p *Pool) settle(c *Controller, now time.Time) {
	for _, o := range p.ctls {
		if o.lastGood.IsZero() && !o.cur.Stale {
			return
		}
	}
	before := now.Add(-time.Nanosecond)
	for _, o := range p.ctls {
		if o == c || o.cur.Stale {
			continue
		}
		ms, i := p.members(o, before)
		want, detail, move := Balance(ms, i, float64(*o.spec.DeadBand))
		if !move {
			continue
		}
		w, limited := o.limit(want, o.cur.Weight)
		if w == o.cur.Weight {
			continue
		}
		next := o.cur
		next.Weight, next.Capacity = w, o.ratio(w)
		why := "the pool's first replies are in: " + detail
		if limited {
			why += ", step limited by max_step"
		}
		prev := o.cur
		if _, changed := o.commit(prev, next, []string{why}, now); changed {
			p.moved = append(p.moved, Moved{Ctl: o, Prev: prev})
		}
	}
}

// TakeMoved returns the members whose decision the pool changed on
// another member's reply since the last call, and forgets them.
func (p *Pool) TakeMoved() []Moved {
	m := p.moved
	p.moved = nil
	return m
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{} }

// Add puts c into the pool; c must be in balance mode.
func (p *Pool) Add(c *Controller) {
	c.pool = p
	p.ctls = append(p.ctls, c)
}

// share returns c's share of the pool's traffic at t.
func (p *Pool) share(c *Controller, t time.Time) float64 {
	sum := 0
	for _, o := range p.ctls {
		sum += o.weightAt(t)
	}
	if sum == 0 {
		return 0
	}
	return float64(c.weightAt(t)) / float64(sum)
}

// members returns the pool as Balance sees it at now, and c's index.
func (p *Pool) members(c *Controller, now time.Time) ([]Member, int) {
	out := make([]Member, len(p.ctls))
	idx := 0
	for i, o := range p.ctls {
		if o == c {
			idx = i
		}
		out[i] = Member{Configured: o.configured, Weight: o.cur.Weight, Share: p.share(o, now),
			Load: o.est.mean, Known: o.est.known(), Pending: o.lastGood.IsZero() && !o.cur.Stale,
			Noise: o.est.noise(), Spread: o.est.spread}
	}
	return out, idx
}

// weightChange is when the effective weight of a controller changed.
type weightChange struct {
	at time.Time
	w  int
}

// weightAt returns the effective weight c gave at t (the configured
// weight before its first change).
func (c *Controller) weightAt(t time.Time) int {
	w := c.configured
	for _, h := range c.hist {
		if h.at.After(t) {
			break
		}
		w = h.w
	}
	return w
}

// record notes a change of the effective weight at now, keeping what
// weightAt needs for the last four intervals.
func (c *Controller) record(now time.Time) {
	w := c.cur.Effective()
	if c.cur.Stale {
		w = c.configured
	}
	if c.weightAt(now) == w {
		return
	}
	c.hist = append(c.hist, weightChange{at: now, w: w})
	keep := now.Add(-4 * c.spec.Interval.D())
	for len(c.hist) > 1 && !c.hist[1].at.After(keep) {
		c.hist = c.hist[1:]
	}
}

// observeBalance takes a reply of pct % headroom at now in balance mode.
// The reply is measured with the share the real server had in the middle
// of the last interval (the weights it reflects) and averaged
// (loadEstimate), unless the share moved by more than dead_band (of
// itself) in the two intervals before: such a reply may reflect either
// weights and is left out, except a saturated one (satHeadroom or less)
// after the share grew: the server is overloaded at the larger share
// whichever weights the reply reflects (after a cut it may predate the
// cut, so it is left out). Balance then gives the weight, from the shares
// at now.
func (c *Controller) observeBalance(pct int, now time.Time) (want int, why string, move bool) {
	iv := c.spec.Interval.D()
	share := c.pool.share(c, now.Add(-iv/2))
	if share <= 0 {
		c.est = loadEstimate{}
		return c.cur.Weight, "", false
	}
	util := 1 - min(max(float64(pct)/100, 0), 1)
	if util >= 1-satHeadroom {
		util = 1
	}
	before := c.pool.share(c, now.Add(-2*iv))
	band := float64(*c.spec.DeadBand) * share
	if math.Abs(share-before) <= band || (util >= 1 && share > before) {
		c.est.add(util, share)
	}
	ms, i := c.pool.members(c, now)
	return Balance(ms, i, float64(*c.spec.DeadBand))
}

// Constants of loadEstimate.
const (
	// loadWindow: the average spans at most this many replies (a minute
	// at the default interval).
	loadWindow = 30
	// shiftBands: a reply further from the average than this many
	// standard deviations is held back; a second one on the same side
	// starts a new average (a level shift).
	shiftBands = 4
	// noiseReplies: the noise is known after this many deviations.
	noiseReplies = 3
	// minNoise: the noise is taken as at least 1 point (the agent rounds
	// to whole points).
	minNoise = 0.01
	// satHeadroom: a reply of this much headroom or less is taken as
	// saturation (a server at 100 % or more reads 0 % with a little
	// noise).
	satHeadroom = 0.02
	// satGuess: a saturated server is taken to be at this utilisation:
	// its reply bounds its load only from below, and cutting it beyond
	// the bound makes its next reply a measurement (below saturation)
	// instead of another bound.
	satGuess = 1.5
)

// loadEstimate is the average of a real server's utilisation per unit of
// share (x = utilisation / share) over its replies, with the noise of one
// reply. It is pure arithmetic on the replies fed to add.
type loadEstimate struct {
	mean      float64 // of x
	n         int     // replies in the mean, at most loadWindow
	spread    float64 // variance of mean over that of one reply
	variance  float64 // of one reply's utilisation, estimated
	dof       int     // deviations in variance, at most loadWindow
	held      float64 // x of a reply held back as an outlier
	shift     int     // its side (+1, -1), 0: none
	saturated bool    // the last reply was 0 % headroom
}

// known reports whether the estimate holds a measurement.
func (e *loadEstimate) known() bool { return e.n > 0 }

// noise is the standard deviation of one reply's utilisation, at least
// minNoise; 0 while fewer than noiseReplies deviations were seen.
func (e *loadEstimate) noise() float64 {
	if e.dof < noiseReplies {
		return 0
	}
	return max(math.Sqrt(e.variance), minNoise)
}

// add takes one reply: utilisation util (1 - headroom) measured at share.
//
//   - 0 % headroom (util 1) says the utilisation is 100 % or more: x is a
//     lower bound, taken at once (the mean becomes at least x), and the
//     next reply below saturation starts a new average.
//   - A reply further than shiftBands standard deviations from the mean
//     (once the noise is known: noiseReplies deviations) is held back; a
//     second one on the same side starts a new average from the two: a
//     real change is followed
//     in two replies, a lone outlier (such as a reply measured while the
//     weights changed) is dropped.
//   - Otherwise x is averaged in: a running mean over at most loadWindow
//     replies, and the noise estimate (an average over at most
//     loadWindow deviations, kept across new averages) is updated from
//     its deviation.
func (e *loadEstimate) add(util, share float64) {
	x := util / share
	if util >= 1 {
		x *= satGuess
		if e.n == 0 || x > e.mean {
			e.mean = x
		}
		e.n, e.spread, e.shift, e.saturated = 1, 1, 0, true
		return
	}
	if e.n == 0 || e.saturated {
		*e = loadEstimate{mean: x, n: 1, spread: 1, variance: e.variance, dof: e.dof}
		return
	}
	r := (x - e.mean) * share // deviation, in utilisation
	side := 1
	if r < 0 {
		side = -1
	}
	if sd := e.noise(); sd > 0 && math.Abs(r) > shiftBands*sd*math.Sqrt(1+e.spread) {
		if e.shift == side {
			*e = loadEstimate{mean: (x + e.held) / 2, n: 2, spread: 0.5, variance: e.variance, dof: e.dof}
			return
		}
		e.held, e.shift = x, side
		return
	}
	e.shift = 0
	// r*r/(1+spread) estimates one reply's variance without bias.
	e.dof = min(e.dof+1, loadWindow)
	e.variance += (r*r/(1+e.spread) - e.variance) / float64(e.dof)
	e.n = min(e.n+1, loadWindow)
	a := 1 / float64(e.n)
	e.mean += a * (x - e.mean)
	e.spread = (1-a)*(1-a)*e.spread + a*a
}
