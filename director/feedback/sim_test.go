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
	convergePolls   int     // polls until every weight stays near its steady value
	changesPerMin   float64 // weight changes per minute per server at steady state
	imbalance       float64 // mean max/min utilisation at steady state, with feedback
	staticImbalance float64 // the same with the configured weights
	weights         []int   // final weights
}

// simulate runs real servers of the given capacities (requests per second
// at 100% utilisation) behind configured weight 100 each, under an
// offered load of rho times their total capacity, split in proportion to
// the weights (what wrr/wlc do for many short connections). Each poll the
// agent reports 100 - utilisation (the cpu source), with Gaussian noise of
// sd points, rounded as the agent rounds; a controller per server with the
// default spec turns the replies into weights. polls at 2s.
func simulate(capacities []float64, rho, sd float64, polls int, seed uint64) simResult {
	sp := Defaults()
	rnd := rand.New(rand.NewPCG(seed, 1))
	total := 0.0
	for _, c := range capacities {
		total += c
	}
	offered := rho * total
	n := len(capacities)
	start := time.Unix(0, 0)
	ctls := make([]*Controller, n)
	for i := range ctls {
		ctls[i] = NewController(sp, 100, start)
	}
	util := func(w []int) []float64 {
		sum := 0
		for _, x := range w {
			sum += x
		}
		u := make([]float64, n)
		for i := range w {
			u[i] = offered * float64(w[i]) / float64(sum) / capacities[i]
		}
		return u
	}
	imb := func(u []float64) float64 { return slices.Max(u) / slices.Min(u) }
	static := make([]int, n)
	for i := range static {
		static[i] = 100
	}
	history := make([][]int, polls)
	changes := make([]int, polls)
	imbs := make([]float64, polls)
	for k := range polls {
		w := make([]int, n)
		for i, c := range ctls {
			w[i] = c.Decision().Weight
		}
		u := util(w)
		imbs[k] = imb(u)
		now := start.Add(time.Duration(k+1) * 2 * time.Second)
		for i, c := range ctls {
			reported := 100*(1-min(u[i], 1)) + rnd.NormFloat64()*sd
			pct := int(math.Round(min(max(reported, 0), 100)))
			if _, changed := c.Observe(agentcheck.Reply{Health: agentcheck.HealthUp, WeightKind: agentcheck.WeightPercent, Weight: pct}, now); changed {
				changes[k]++
			}
		}
		history[k] = w
	}
	steady := polls / 2
	res := simResult{staticImbalance: imb(util(static)), weights: history[polls-1]}
	// Steady value of each weight: its median over the second half.
	med := make([]float64, n)
	for i := range n {
		var xs []float64
		for k := steady; k < polls; k++ {
			xs = append(xs, float64(history[k][i]))
		}
		slices.Sort(xs)
		med[i] = xs[len(xs)/2]
	}
	band := 2 * float64(*sp.DeadBand) * 100
	res.convergePolls = polls
	for k := polls - 1; k >= 0; k-- {
		ok := true
		for i := range n {
			ok = ok && math.Abs(float64(history[k][i])-med[i]) <= band
		}
		if !ok {
			break
		}
		res.convergePolls = k
	}
	ch, sum := 0, 0.0
	for k := steady; k < polls; k++ {
		ch += changes[k]
		sum += imbs[k]
	}
	minutes := float64(polls-steady) * 2 / 60
	res.changesPerMin = float64(ch) / minutes / float64(n)
	res.imbalance = sum / float64(polls-steady)
	return res
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

// BenchmarkSimulation reports, for real servers of capacities 100, 100, 60
// and 40 behind equal configured weights, at 80% and 50% of their total
// capacity: polls to converge, weight changes per minute per server at
// steady state (minutes 10 to 20), and the load imbalance (max/min
// utilisation) with feedback and with the static weights.
func BenchmarkSimulation(b *testing.B) {
	caps := []float64{100, 100, 60, 40}
	for _, rho := range []float64{0.8, 0.5} {
		b.Run(fmt.Sprintf("load=%.0f%%", rho*100), func(b *testing.B) {
			var r simResult
			for range b.N {
				r = simulate(caps, rho, 3, 600, 1)
			}
			b.ReportMetric(float64(r.convergePolls), "polls-to-converge")
			b.ReportMetric(r.changesPerMin, "changes/min/server")
			b.ReportMetric(r.imbalance, "imbalance")
			b.ReportMetric(r.staticImbalance, "static-imbalance")
			b.Logf("capacities %v at %.0f%%: weights %v, converged in %d polls, %.2f changes/min/server, imbalance %.3f (static %.2f)",
				caps, rho*100, r.weights, r.convergePolls, r.changesPerMin, r.imbalance, r.staticImbalance)
		})
	}
	b.Run("step", func(b *testing.B) {
		for _, pct := range []int{25, 10, 60} {
			b.ReportMetric(float64(stepPolls(pct)), fmt.Sprintf("polls-to-%d%%", pct))
		}
	})
}
