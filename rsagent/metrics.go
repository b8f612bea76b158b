package rsagent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvs-node/lvs-node/internal/promserve"
	"github.com/lvs-node/lvs-node/toa"
)

// Metric names.
const (
	metricRepairs = "lvs_node_realserver_repairs_total"
	metricErrors  = "lvs_node_realserver_reconcile_errors_total"
	metricReloads = "lvs_node_realserver_reloads_total"
	metricVIPs    = "lvs_node_realserver_vips"
)

// Metrics are the daemon's read-only metrics, kept in a registry of their
// own (nothing is registered globally).
type Metrics struct {
	reg     *prometheus.Registry
	repairs prometheus.Counter
	fails   prometheus.Counter
	reloads *prometheus.CounterVec
	vips    prometheus.Gauge
}

// NewMetrics returns a fresh set of metrics in a new registry. Other
// groups (load feedback, TOA) are added with Add.
func NewMetrics() *Metrics {
	m := &Metrics{
		repairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricRepairs,
			Help: "Changes made after the first apply to bring the host back to its configured state.",
		}),
		fails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricErrors,
			Help: "Reconcile passes that ended with an error.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricReloads,
			Help: "Reload requests, by result (ok or refused).",
		}, []string{"result"}),
		vips: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricVIPs,
			Help: "Configured VIPs currently bound on this host (dr and tun).",
		}),
	}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("refused")
	m.reg = promserve.NewRegistry(map[string]promserve.Updater{
		"realserver": promserve.UpdaterFunc(func(ch chan<- prometheus.Metric) error {
			for _, c := range []prometheus.Collector{m.repairs, m.fails, m.reloads, m.vips} {
				c.Collect(ch)
			}
			return nil
		}),
		"toa": promserve.Of(toa.NewCollector(toa.Options{})),
	})
	return m
}

// Add registers another group of metrics under name, with its scrape
// success.
func (m *Metrics) Add(name string, u promserve.Updater) error {
	return m.reg.Register(promserve.Named(name, u))
}

// Registry is the registry that holds the metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics, /healthz and /readyz (ready is nil or
// reports why the agent is not ready); GET and HEAD only.
func (m *Metrics) Handler(ready func() error) http.Handler {
	return promserve.Handler(m.reg, ready, nil)
}
