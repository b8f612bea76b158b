package director

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsPath is the only path the metrics endpoint answers.
const metricsPath = "/metrics"

// NewMetricsRegistry returns a registry of its own for one daemon, holding
// the engine's counters (metrics_engine.go), the managed part of the IPVS
// table as of the last reconciliation (metrics_ipvs.go), and the process
// and Go runtime metrics. Every collector reads its source when scraped.
func NewMetricsRegistry(e *Engine) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newEngineCollector(e),
		newIPVSCollector(e),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	return reg
}

// MetricsHandler serves the metrics of reg in the Prometheus exposition
// formats at /metrics. It is read-only: other paths get 404, methods other
// than GET and HEAD get 405. Collection errors go to log (nil discards
// them); the metrics that could be gathered are still served.
func MetricsHandler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != metricsPath {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only endpoint", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// typedDesc is a metric description with its value type.
type typedDesc struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

func newTypedDesc(name, help string, typ prometheus.ValueType, labels ...string) typedDesc {
	return typedDesc{prometheus.NewDesc(name, help, labels, nil), typ}
}

func (d typedDesc) metric(v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d.desc, d.typ, v, labels...)
}
