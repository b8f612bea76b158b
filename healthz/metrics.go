package healthz

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the counters and histogram the checks feed; the per-owner
// series are built from the manager's state when scraped.
type metrics struct {
	duration    *prometheus.HistogramVec
	checks      *prometheus.CounterVec
	errors      *prometheus.CounterVec
	up          *prometheus.Desc
	transitions *prometheus.Desc
}

func newMetrics() *metrics {
	return &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lvs_node_health_check_duration_seconds",
			Help:    "Time one health check took, by check type.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"type"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lvs_node_health_checks_total",
			Help: "Health checks run, by check type and result (pass or fail).",
		}, []string{"type", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lvs_node_health_check_errors_total",
			Help: "Failed health checks by check type and kind of failure (timeout, refused, reset, unreachable, tls, status, mismatch, protocol, rcode, exit, other).",
		}, []string{"type", "kind"}),
		up: prometheus.NewDesc("lvs_node_real_server_up",
			"1 when the real server passes its health check, 0 when it is down or not yet known to be up.",
			ownerLabels(), nil),
		transitions: prometheus.NewDesc("lvs_node_health_check_transitions_total",
			"Health transitions of the real server since its check started, by the state it went to.",
			append(ownerLabels(), "to"), nil),
	}
}

// Describe sends the descriptions of the health metrics.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	m.metrics.duration.Describe(ch)
	m.metrics.checks.Describe(ch)
	m.metrics.errors.Describe(ch)
	ch <- m.metrics.up
	ch <- m.metrics.transitions
}

// Collect sends the health metrics: per owner lvs_node_real_server_up and
// lvs_node_health_check_transitions_total, and per check type the
// duration histogram and the check and error counters.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	m.metrics.duration.Collect(ch)
	m.metrics.checks.Collect(ch)
	m.metrics.errors.Collect(ch)
	// Build the series under the lock, send them without it: a slow
	// scrape must not hold up the checks.
	m.mu.Lock()
	out := make([]prometheus.Metric, 0, 3*len(m.owners))
	for o, ow := range m.owners {
		lv := o.labelValues()
		up := 0.0
		if ow.state == StateUp {
			up = 1
		}
		out = append(out, prometheus.MustNewConstMetric(m.metrics.up, prometheus.GaugeValue, up, lv...))
		for _, s := range []State{StateUp, StateDown} {
			out = append(out, prometheus.MustNewConstMetric(m.metrics.transitions, prometheus.CounterValue, float64(ow.transitions[s]), append(lv, s.String())...))
		}
	}
	m.mu.Unlock()
	for _, x := range out {
		ch <- x
	}
}
