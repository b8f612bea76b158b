package feedback

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// simResult is what one simulated run measured.
type simResult struct {
	settlePolls     int     // polls until every weight stays within 10% of its steady value for a minute
	balancedPolls   int     // polls until the imbalance stays at most balancedGoal for a minute; -1: never
	changesPerMin   float64 // weight changes per minute per server at steady state
	imbalance       float64 // mean max/min utilisation at steady state, with feedback
	staticImbalance float64 // the same with the configured weights
	weights         []int   // final weights
}

// simModel is the offered-load model of a simulated run.
type simModel struct {
	capacities []float64 // requests per second of each real server at 100% utilisation
	rho        float64   // offered load over the total capacity
	sd         float64   // noise of the agents' reports, points
	lag        int       // polls between a weight and the utilisation it gives
	polls      int       // at 2s
	seed       uint64
}

const (
	balancedGoal = 1.15 // imbalance goal
	holdPolls    = 30   // a minute at 2s
)

// simulate runs real servers of the model's capacities behind configured
// weight 100 each, under an offered load of rho times their total
// capacity, split in proportion to the weights (what wrr/wlc do for many
// short connections). Each poll the agent reports 100 - utilisation (the
// cpu source), with Gaussian noise of sd points, rounded and bounded to
// 0-100 as the agent does; a controller per server with the default spec
// in the given mode turns the replies into weights.
func simulate(mode string, m simModel) simResult {
	sp := Defaults()
	sp.Mode = mode
	rnd := rand.New(rand.NewPCG(m.seed, 1))
	offered := 0.0
	for _, c := range m.capacities {
		offered += m.rho * c
	}
	n := len(m.capacities)
	start := time.Unix(0, 0)
	ctls := make([]*Controller, n)
	pool := NewPool()
	for i := range ctls {
		ctls[i] = NewController(sp, 100, start)
		if mode == ModeBalance {
			pool.Add(ctls[i])
		}
	}
	util := func(w []int) []float64 {
		sum := 0
		for _, x := range w {
			sum += x
		}
		u := make([]float64, n)
		for i := range w {
			u[i] = offered * float64(w[i]) / float64(sum) / m.capacities[i]
		}
		return u
	}
	imb := func(u []float64) float64 { return slices.Max(u) / slices.Min(u) }
	static := make([]int, n)
	for i := range static {
		static[i] = 100
	}
	history := make([][]int, m.polls)
	changes := make([]int, m.polls)
	imbs := make([]float64, m.polls)
	for k := range m.polls {
		w := make([]int, n)
		for i, c := range ctls {
			w[i] = c.Decision().Weight
		}
		history[k] = w
		u := util(history[max(0, k-m.lag)])
		imbs[k] = imb(util(w))
		now := start.Add(time.Duration(k+1) * 2 * time.Second)
		for i, c := range ctls {
			reported := 100*(1-min(u[i], 1)) + rnd.NormFloat64()*m.sd
			pct := int(math.Round(min(max(reported, 0), 100)))
			if _, changed := c.Observe(agentcheck.Reply{Health: agentcheck.HealthUp, WeightKind: agentcheck.WeightPercent, Weight: pct}, now); changed {
				changes[k]++
			}
			changes[k] += len(pool.TakeMoved())
		}
	}
	steady := m.polls / 2
	res := simResult{staticImbalance: imb(util(static)), weights: history[m.polls-1]}
	// Steady value of each weight: its median over the second half.
	med := make([]float64, n)
	for i := range n {
		var xs []float64
		for k := steady; k < m.polls; k++ {
			xs = append(xs, float64(history[k][i]))
		}
		slices.Sort(xs)
		med[i] = xs[len(xs)/2]
	}
	res.settlePolls = firstHeld(m.polls, func(k int) bool {
		for i := range n {
			if math.Abs(float64(history[k][i])-med[i]) > 0.1*med[i] {
				return false
			}
		}
		return true
	})
	res.balancedPolls = firstHeld(m.polls, func(k int) bool { return imbs[k] <= balancedGoal })
	ch, sum := 0, 0.0
	for k := steady; k < m.polls; k++ {
		ch += changes[k]
		sum += imbs[k]
	}
	minutes := float64(m.polls-steady) * 2 / 60
	res.changesPerMin = float64(ch) / minutes / float64(n)
	res.imbalance = sum / float64(m.polls-steady)
	return res
}

// firstHeld returns the first poll k from which ok holds for holdPolls
// polls, -1 if none.
func firstHeld(polls int, ok func(k int) bool) int {
	for k := 0; k+holdPolls <= polls; k++ {
		held := true
		for j := k; j < k+holdPolls && held; j++ {
			held = ok(j)
		}
		if held {
			return k
		}
	}
	return -1
}

// stepPolls counts the polls a controller needs to bring a server whose
// load source reports pct (steadily) within the dead band of pct% of its
// configured weight.
func stepPolls(pct int) int {
	sp := Defaults()
	c := NewController(sp, 100, time.Unix(0, 0))
	for k := 1; k <= 20; k++ {
		c.Observe(agentcheck.Reply{WeightKind: agentcheck.WeightPercent, Weight: pct}, time.Unix(int64(2*k), 0))
		if math.Abs(float64(c.Decision().Weight-pct)) <= float64(*sp.DeadBand)*100 {
			return k
		}
	}
	return -1
}

func TestStepResponse(t *testing.T) {
	for _, pct := range []int{25, 10, 60, 95} {
		if k := stepPolls(pct); k < 1 || k > 3 {
			t.Errorf("step to %d%%: %d polls, want at most 3", pct, k)
		}
	}
}

// TestBalanceModeGoals: in the closed loop of the simulation (weights
// move the load that moves the replies), balance mode meets the goals
// where static weights give an imbalance of 1.5 or more, over 20 seeds,
// with the load measured at once or one poll late: at most 1.15 at
// steady state, at most 1 weight change per minute per server, balanced
// within 3 polls (the median seed; noise in a first reply can leave a
// server just beyond 1.15 for longer, never past 20 polls); capacity mode
// does not balance.
func TestBalanceModeGoals(t *testing.T) {
	for _, rho := range []float64{0.5, 0.8} {
		for _, lag := range []int{0, 1} {
			m := simModel{capacities: benchCapacities, rho: rho, sd: 3, lag: lag, polls: 600}
			w := worstOf(m, 20)
			if w.staticImbalance < 1.5 || w.imbalance > balancedGoal || w.changesPerMin > 1 || w.medianPolls > 3 ||
				w.balancedPolls < 0 || w.balancedPolls > 20 {
				t.Errorf("load %.0f%%, lag %d: %+v", rho*100, lag, w)
			}
		}
		if r := simulate(ModeCapacity, simModel{capacities: benchCapacities, rho: rho, sd: 3, polls: 600, seed: 1}); r.balancedPolls >= 0 {
			t.Errorf("capacity mode balanced at %.0f%%: %+v", rho*100, r)
		}
	}
}

// benchCapacities are the real servers of the simulation.
var benchCapacities = []float64{100, 100, 60, 40}

// BenchmarkSimulation reports, for real servers of capacities 100, 100, 60
// and 40 behind equal configured weights, at 50% and 80% of their total
// capacity, in balance mode and in capacity mode: polls until the weights
// settle and until the load is balanced, weight changes per minute per
// server at steady state (minutes 10 to 20), and the load imbalance
// (max/min utilisation) with feedback and with the static weights. Then
// balance mode over 20 seeds, with the load measured at once and one poll
// late (the worst of each figure, and the median polls to balance), and
// the open-loop step of capacity mode.
func BenchmarkSimulation(b *testing.B) {
	for _, mode := range []string{ModeBalance, ModeCapacity} {
		for _, rho := range []float64{0.5, 0.8} {
			b.Run(fmt.Sprintf("mode=%s/load=%.0f%%", mode, rho*100), func(b *testing.B) {
				var r simResult
				for range b.N {
					r = simulate(mode, simModel{capacities: benchCapacities, rho: rho, sd: 3, polls: 600, seed: 1})
				}
				b.ReportMetric(float64(r.settlePolls), "polls-to-settle")
				b.ReportMetric(float64(r.balancedPolls), "polls-to-balance")
				b.ReportMetric(r.changesPerMin, "changes/min/server")
				b.ReportMetric(r.imbalance, "imbalance")
				b.ReportMetric(r.staticImbalance, "static-imbalance")
				b.Logf("%s mode, capacities %v at %.0f%%: weights %v, settled in %d polls, balanced (<= %.2f) in %d polls (-1: never), %.2f changes/min/server, imbalance %.3f (static %.2f)",
					mode, benchCapacities, rho*100, r.weights, r.settlePolls, balancedGoal, r.balancedPolls, r.changesPerMin, r.imbalance, r.staticImbalance)
			})
		}
	}
	for _, lag := range []int{0, 1} {
		for _, rho := range []float64{0.5, 0.8} {
			b.Run(fmt.Sprintf("mode=balance/seeds=20/lag=%d/load=%.0f%%", lag, rho*100), func(b *testing.B) {
				var w simWorst
				for range b.N {
					w = worstOf(simModel{capacities: benchCapacities, rho: rho, sd: 3, lag: lag, polls: 600}, 20)
				}
				b.ReportMetric(float64(w.balancedPolls), "worst-polls-to-balance")
				b.ReportMetric(float64(w.medianPolls), "median-polls-to-balance")
				b.ReportMetric(w.changesPerMin, "worst-changes/min/server")
				b.ReportMetric(w.imbalance, "worst-imbalance")
			})
		}
	}
	b.Run("mode=capacity/step", func(b *testing.B) {
		for _, pct := range []int{25, 10, 60} {
			b.ReportMetric(float64(stepPolls(pct)), fmt.Sprintf("polls-to-%d%%", pct))
		}
	})
}

// simWorst is the worst of several runs of balance mode.
type simWorst struct {
	balancedPolls int // -1 if a run never balanced
	medianPolls   int // the median run's polls to balance
	changesPerMin float64
	imbalance     float64
	// staticImbalance is the least imbalance of the static weights.
	staticImbalance float64
}

// worstOf runs m in balance mode with seeds 1 to seeds.
func worstOf(m simModel, seeds int) simWorst {
	var w simWorst
	var polls []int
	for seed := range uint64(seeds) {
		m.seed = seed + 1
		r := simulate(ModeBalance, m)
		if r.balancedPolls < 0 || w.balancedPolls < 0 {
			w.balancedPolls = -1
		} else {
			w.balancedPolls = max(w.balancedPolls, r.balancedPolls)
		}
		polls = append(polls, r.balancedPolls)
		w.changesPerMin = max(w.changesPerMin, r.changesPerMin)
		w.imbalance = max(w.imbalance, r.imbalance)
		if seed == 0 || r.staticImbalance < w.staticImbalance {
			w.staticImbalance = r.staticImbalance
		}
	}
	slices.Sort(polls)
	w.medianPolls = polls[len(polls)/2]
	return w
}
