package toa

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the eBPF TOA counters and those of loaded TOA
// modules as Prometheus metrics. It reads the pins and /proc at each
// scrape and keeps no state of its own.
type Collector struct {
	opts     Options
	attached *prometheus.Desc
	events   *prometheus.Desc
	module   *prometheus.Desc
	modEvent *prometheus.Desc
	slots    *prometheus.Desc
	success  *prometheus.Desc
}

// NewCollector returns a collector for the host opts describe.
func NewCollector(opts Options) *Collector {
	return &Collector{
		opts: opts,
		attached: prometheus.NewDesc("lvs_node_toa_attached",
			"Whether eBPF TOA is attached (1) or not (0).", nil, nil),
		events: prometheus.NewDesc("lvs_node_toa_events_total",
			"eBPF TOA events, named as the TOA modules' /proc/net/toa_stats counters (plus untrusted, malformed, late_toa, nat64_lookup, slot_taken).",
			[]string{"event"}, nil),
		module: prometheus.NewDesc("lvs_node_toa_module_loaded",
			"A loaded TOA kernel module.", []string{"module", "version"}, nil),
		modEvent: prometheus.NewDesc("lvs_node_toa_module_events_total",
			"Counters of a loaded TOA kernel module, from its /proc/net statistics file.",
			[]string{"module", "event"}, nil),
		slots: prometheus.NewDesc("lvs_node_toa_slots",
			"Size of eBPF TOA's preallocated address array (the slot_taken event counts connections that found their slot held).",
			nil, nil),
		success: prometheus.NewDesc("lvs_node_toa_scrape_success",
			"Whether the TOA counters could be read (1) or not (0).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.attached, c.events, c.module, c.modEvent, c.slots, c.success} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ok := 1.0
	t, err := ReadCounters(c.opts)
	switch {
	case err == nil:
		ch <- prometheus.MustNewConstMetric(c.attached, prometheus.GaugeValue, 1)
		for _, ctr := range t.Counters {
			ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(ctr.Total()), ctr.Name)
		}
		// The size only: counting the slots in use reads the whole
		// array (up to 160 MiB), which toa status does on demand.
		if n, err := SlotTotal(c.opts); err == nil {
			ch <- prometheus.MustNewConstMetric(c.slots, prometheus.GaugeValue, float64(n))
		} else if !errors.Is(err, ErrNotAttached) {
			ok = 0
		}
	case errors.Is(err, ErrNotAttached):
		ch <- prometheus.MustNewConstMetric(c.attached, prometheus.GaugeValue, 0)
	default:
		ok = 0
	}
	mods, err := FindModules(c.opts)
	if err != nil {
		ok = 0
	}
	for _, m := range mods {
		ch <- prometheus.MustNewConstMetric(c.module, prometheus.GaugeValue, 1, m.Name, m.Version)
		if m.Stats == nil {
			if m.StatsFile != "" {
				ok = 0
			}
			continue
		}
		for _, ctr := range m.Stats.Counters {
			ch <- prometheus.MustNewConstMetric(c.modEvent, prometheus.CounterValue, float64(ctr.Total()), m.Name, ctr.Name)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.success, prometheus.GaugeValue, ok)
}
