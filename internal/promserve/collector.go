package promserve

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Updater sends one group of metrics, read when scraped, and reports
// whether their source could be read.
type Updater interface {
	Update(ch chan<- prometheus.Metric) error
}

// UpdaterFunc adapts a function to Updater.
type UpdaterFunc func(ch chan<- prometheus.Metric) error

// Update calls f.
func (f UpdaterFunc) Update(ch chan<- prometheus.Metric) error { return f(ch) }

// Of adapts a collector whose source cannot fail.
func Of(c prometheus.Collector) Updater {
	return UpdaterFunc(func(ch chan<- prometheus.Metric) error {
		c.Collect(ch)
		return nil
	})
}

var (
	scrapeSuccess = prometheus.NewDesc("lvs_node_scrape_collector_success",
		"1 when the collector's source could be read at this scrape, else 0.", []string{"collector"}, nil)
	scrapeDuration = prometheus.NewDesc("lvs_node_scrape_collector_duration_seconds",
		"How long the collector took at this scrape.", []string{"collector"}, nil)
)

// observed is an Updater with its success and duration.
type observed struct {
	name string
	u    Updater
}

// Describe sends nothing: the metrics of a group may vary (an unchecked
// collector).
func (o observed) Describe(chan<- *prometheus.Desc) {}

// Collect sends the group's metrics, then its success and duration.
func (o observed) Collect(ch chan<- prometheus.Metric) {
	start := time.Now()
	err := o.u.Update(ch)
	ok := 1.0
	if err != nil {
		ok = 0
		ch <- prometheus.NewInvalidMetric(prometheus.NewDesc("lvs_node_scrape_collector_error", "A collector failed.", nil, prometheus.Labels{"collector": o.name}), err)
	}
	ch <- prometheus.MustNewConstMetric(scrapeSuccess, prometheus.GaugeValue, ok, o.name)
	ch <- prometheus.MustNewConstMetric(scrapeDuration, prometheus.GaugeValue, time.Since(start).Seconds(), o.name)
}

// Named returns u as a collector of its own, with its success and duration
// under name, for a registry made by NewRegistry.
func Named(name string, u Updater) prometheus.Collector { return observed{name: name, u: u} }

// NewRegistry returns a private registry holding each named group of
// metrics with its success and duration, and the process and Go runtime
// metrics.
func NewRegistry(groups map[string]Updater) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	for name, u := range groups {
		reg.MustRegister(observed{name: name, u: u})
	}
	return reg
}
