package feedback

import (
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

// Metric names.
const (
	MetricCapacity = "lvs_node_real_server_capacity_ratio"
	MetricWeight   = "lvs_node_real_server_feedback_weight"
	MetricStale    = "lvs_node_real_server_agent_stale"
	MetricAdmin    = "lvs_node_real_server_admin_state"
	MetricChanges  = "lvs_node_real_server_feedback_changes_total"
	MetricPolls    = "lvs_node_feedback_agent_polls_total"
	MetricErrors   = "lvs_node_feedback_agent_errors_total"
)

// Collector returns the poller's metrics, read at each scrape. Register
// it in the daemon's private registry.
func (p *Poller[K]) Collector() prometheus.Collector {
	descCapacity := prometheus.NewDesc(MetricCapacity,
		"Weight set by feedback relative to the configured weight (1 = configured).", []string{"service", "remote_address", "remote_port"}, nil)
	descWeight := prometheus.NewDesc(MetricWeight,
		"Weight feedback asks for: configured weight times the reported capacity, smoothed and clamped, or in balance mode the server's part of the service's configured weights (admin state and health apart).", []string{"service", "remote_address", "remote_port"}, nil)
	descStale := prometheus.NewDesc(MetricStale,
		"1 while the agent has given no good reply for stale_after (the configured weight applies).", []string{"service", "remote_address", "remote_port"}, nil)
	descAdmin := prometheus.NewDesc(MetricAdmin,
		"Administrative state the agent reports: 1 on the current state.", []string{"service", "remote_address", "remote_port", "state"}, nil)
	descChanges := prometheus.NewDesc(MetricChanges,
		"Changes handed to the director (weight beyond the dead band, admin state, agent health, staleness).", []string{"service", "remote_address", "remote_port"}, nil)
	descPolls := prometheus.NewDesc(MetricPolls,
		"Polls of each agent.", []string{"agent"}, nil)
	descErrors := prometheus.NewDesc(MetricErrors,
		"Polls that gave no good reply, by agent and kind (connect, timeout, incomplete, too_long, malformed, io).", []string{"agent", "kind"}, nil)
	return &collector[K]{p: p, capacity: descCapacity, weight: descWeight, stale: descStale, admin: descAdmin,
		changes: descChanges, polls: descPolls, errors: descErrors}
}

type collector[K comparable] struct {
	p                                                      *Poller[K]
	capacity, weight, stale, admin, changes, polls, errors *prometheus.Desc
}

func (c *collector[K]) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.capacity, c.weight, c.stale, c.admin, c.changes, c.polls, c.errors} {
		ch <- d
	}
}

func (c *collector[K]) Collect(ch chan<- prometheus.Metric) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, a := range c.p.agents {
		addr := a.key.addr.String()
		ch <- prometheus.MustNewConstMetric(c.polls, prometheus.CounterValue, float64(a.polls), addr)
		// Every kind, 0 until it happens: a rate over the series works
		// from the first scrape.
		for _, kind := range []string{ErrKindConnect, ErrKindTimeout, ErrKindIncomplete, ErrKindTooLong, ErrKindMalformed, ErrKindIO} {
			ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(a.errs[kind]), addr, kind)
		}
		for _, t := range a.targets {
			d := t.ctl.Decision()
			l := append([]string{t.Service}, serverLabels(t.Server)...)
			ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, d.Capacity, l...)
			ch <- prometheus.MustNewConstMetric(c.weight, prometheus.GaugeValue, float64(d.Weight), l...)
			ch <- prometheus.MustNewConstMetric(c.stale, prometheus.GaugeValue, b2f(d.Stale), l...)
			for _, s := range []agentcheck.Admin{agentcheck.AdminReady, agentcheck.AdminDrain, agentcheck.AdminMaint} {
				ch <- prometheus.MustNewConstMetric(c.admin, prometheus.GaugeValue, b2f(d.Admin == s), append(l, s.String())...)
			}
			ch <- prometheus.MustNewConstMetric(c.changes, prometheus.CounterValue, float64(t.changes), l...)
		}
	}
}

// serverLabels splits a target's Server ("ADDRESS:PORT") into the
// remote_address and remote_port labels, as the director's IPVS backend
// metrics have them; a Server in another form is the address alone.
func serverLabels(server string) []string {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return []string{server, ""}
	}
	return []string{host, port}
}
