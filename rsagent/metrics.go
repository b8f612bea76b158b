package rsagent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// NewMetrics returns a fresh set of metrics in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
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
	m.reg.MustRegister(m.repairs, m.fails, m.reloads, m.vips, toa.NewCollector(toa.Options{}))
	return m
}

// Registry is the registry that holds the metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics; it answers GET and HEAD only.
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}
