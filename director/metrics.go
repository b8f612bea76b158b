package director

import (
	"log/slog"
	"maps"
	"net/http"

	"github.com/lvs-node/lvs-node/internal/promserve"
	"github.com/prometheus/client_golang/prometheus"
)

// NewMetricsRegistry returns a registry of its own for one daemon, holding
// the engine's counters (metrics_engine.go), the managed part of the IPVS
// table as of the last reconciliation (metrics_ipvs.go), the configured
// and effective weights (metrics_weights.go), full-NAT's TOA writer
// (metrics_fullnat.go) and the groups in more (the Monitor's), each with
// its scrape success, and the process and Go runtime metrics. Every
// collector reads its source when scraped, without waiting for the engine.
func NewMetricsRegistry(e *Engine, more ...map[string]promserve.Updater) *prometheus.Registry {
	groups := map[string]promserve.Updater{
		"engine":  promserve.Of(newEngineCollector(e)),
		"ipvs":    promserve.Of(newIPVSCollector(e)),
		"weights": promserve.Of(newWeightCollector(e)),
		"fullnat": newFullNATCollector(e),
	}
	for _, m := range more {
		maps.Copy(groups, m)
	}
	return promserve.NewRegistry(groups)
}

// MetricsHandler serves reg at /metrics, with /healthz and /readyz (ready
// once a configuration is applied and the last reconciliation succeeded;
// see promserve.Handler).
func MetricsHandler(reg *prometheus.Registry, e *Engine, log *slog.Logger) http.Handler {
	var ready func() error
	if e != nil {
		ready = e.Ready
	}
	return promserve.Handler(reg, ready, log)
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
