package director

import "github.com/prometheus/client_golang/prometheus"

// counterSource gives the running totals of reconciliation (an *Engine).
type counterSource interface {
	Counters() Counters
}

// engineCollector exports the Engine's Counters, read at each scrape.
type engineCollector struct {
	src counterSource

	applies, applyErrors, resyncs, repairs, reloads, operations typedDesc
	lastSuccess, lastTimestamp, lastDuration                    typedDesc
}

func newEngineCollector(src counterSource) *engineCollector {
	const p = "lvs_node_director_"
	counter := func(name, help string, labels ...string) typedDesc {
		return newTypedDesc(p+name, help, prometheus.CounterValue, labels...)
	}
	gauge := func(name, help string) typedDesc {
		return newTypedDesc(p+name, help, prometheus.GaugeValue)
	}
	return &engineCollector{
		src:           src,
		applies:       counter("applies_total", "Reconciliations of the kernel with the configuration."),
		applyErrors:   counter("apply_errors_total", "Reconciliations that failed."),
		resyncs:       counter("resyncs_total", "Periodic resyncs."),
		repairs:       counter("drift_repairs_total", "IPVS operations resyncs applied to repair drift."),
		reloads:       counter("reloads_total", "Reload requests by result.", "result"),
		operations:    counter("operations_total", "IPVS operations applied."),
		lastSuccess:   gauge("last_apply_success", "1 when the last reconciliation succeeded, else 0."),
		lastTimestamp: gauge("last_apply_timestamp_seconds", "When the last reconciliation started, in seconds since the epoch."),
		lastDuration:  gauge("last_apply_duration_seconds", "How long the last reconciliation took."),
	}
}

// Describe implements prometheus.Collector.
func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []typedDesc{c.applies, c.applyErrors, c.resyncs, c.repairs, c.reloads, c.operations, c.lastSuccess, c.lastTimestamp, c.lastDuration} {
		ch <- d.desc
	}
}

// Collect implements prometheus.Collector. The time and duration of the
// last reconciliation are left out until there has been one.
func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.src.Counters()
	ch <- c.applies.metric(float64(n.Applies))
	ch <- c.applyErrors.metric(float64(n.ApplyErrors))
	ch <- c.resyncs.metric(float64(n.Resyncs))
	ch <- c.repairs.metric(float64(n.Repairs))
	ch <- c.reloads.metric(float64(n.Reloads-n.ReloadErrors), "ok")
	ch <- c.reloads.metric(float64(n.ReloadErrors), "error")
	ch <- c.operations.metric(float64(n.OpsApplied))
	ok := 0.0
	if n.LastOK {
		ok = 1
	}
	ch <- c.lastSuccess.metric(ok)
	if !n.LastApply.IsZero() {
		// Seconds and fraction apart: UnixNano is beyond a float64's
		// exact range and would round the seconds.
		ch <- c.lastTimestamp.metric(float64(n.LastApply.Unix()) + float64(n.LastApply.Nanosecond())/1e9)
		ch <- c.lastDuration.metric(n.LastDuration.Seconds())
	}
}
