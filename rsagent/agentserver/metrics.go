package agentserver

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// Metric names.
const (
	MetricCapacity       = "lvs_node_realserver_capacity_ratio"
	MetricSourceCapacity = "lvs_node_realserver_load_source_capacity_ratio"
	MetricSourceReads    = "lvs_node_realserver_load_source_reads_total"
	MetricSourceErrors   = "lvs_node_realserver_load_source_errors_total"
	MetricSourceSeconds  = "lvs_node_realserver_load_source_duration_seconds"
	MetricAdmin          = "lvs_node_realserver_admin_state"
	MetricRequests       = "lvs_node_realserver_agent_requests_total"
)

// Collector returns the real server's load and agent metrics, read at
// each scrape. Register it in the daemon's private registry.
func (s *Server) Collector() prometheus.Collector {
	src := []string{"source", "type"}
	return &collector{s: s,
		capacity: prometheus.NewDesc(MetricCapacity,
			"Combined capacity of the load sources, 0 to 1 (absent while no source gives one).", nil, nil),
		srcCapacity: prometheus.NewDesc(MetricSourceCapacity,
			"Capacity one load source gave in its last reading, 0 to 1 (absent when it gave none).", src, nil),
		srcReads: prometheus.NewDesc(MetricSourceReads, "Readings of each load source.", src, nil),
		srcErrors: prometheus.NewDesc(MetricSourceErrors,
			"Readings skipped because the source failed (kind error) or did not answer in time (kind timeout).", append(src, "kind"), nil),
		srcSeconds: prometheus.NewDesc(MetricSourceSeconds, "How long the last reading of each source took.", src, nil),
		admin:      prometheus.NewDesc(MetricAdmin, "The real server's admin state: 1 on the current one.", []string{"state"}, nil),
		requests: prometheus.NewDesc(MetricRequests,
			"Requests to the agent (endpoint agent or http) by result: ok, refused (token, method), busy (too many at once), error.", []string{"endpoint", "result"}, nil),
	}
}

type collector struct {
	s                                                                       *Server
	capacity, srcCapacity, srcReads, srcErrors, srcSeconds, admin, requests *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.capacity, c.srcCapacity, c.srcReads, c.srcErrors, c.srcSeconds, c.admin, c.requests} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	r := c.s.opts.Report()
	if r.Capacity != nil {
		ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, *r.Capacity/100)
	}
	for _, st := range r.Sources {
		if st.Capacity != nil {
			ch <- prometheus.MustNewConstMetric(c.srcCapacity, prometheus.GaugeValue, *st.Capacity/100, st.Name, st.Type)
		}
		ch <- prometheus.MustNewConstMetric(c.srcReads, prometheus.CounterValue, float64(st.Reads), st.Name, st.Type)
		ch <- prometheus.MustNewConstMetric(c.srcErrors, prometheus.CounterValue, float64(st.Errors), st.Name, st.Type, "error")
		ch <- prometheus.MustNewConstMetric(c.srcErrors, prometheus.CounterValue, float64(st.Timeouts), st.Name, st.Type, "timeout")
		ch <- prometheus.MustNewConstMetric(c.srcSeconds, prometheus.GaugeValue, st.Seconds, st.Name, st.Type)
	}
	admin := Reply(r).Admin
	for _, a := range []agentcheck.Admin{agentcheck.AdminReady, agentcheck.AdminDrain, agentcheck.AdminMaint} {
		v := 0.0
		if a == admin {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.admin, prometheus.GaugeValue, v, a.String())
	}
	st := c.s.Stats()
	for _, m := range []struct {
		endpoint, result string
		n                uint64
	}{
		{"agent", "ok", st.Answered}, {"agent", "refused", st.Refused}, {"agent", "busy", st.Busy}, {"agent", "error", st.Failed},
		{"http", "ok", st.HTTPAnswered}, {"http", "refused", st.HTTPRefused},
	} {
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(m.n), m.endpoint, m.result)
	}
}
