package director

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// configSource gives the configuration in force and the other inputs (an
// *Engine).
type configSource interface {
	Config() *Config
	Inputs() *Inputs
}

// weightCollector exports, per real server of the configuration in
// force, its configured weight and the effective weight its inputs give
// it (health, the operator's drain, the agent's admin state and load
// feedback, the quorum), with the labels of the IPVS backend metrics.
type weightCollector struct {
	src                   configSource
	configured, effective typedDesc
}

func newWeightCollector(src configSource) *weightCollector {
	labels := []string{"service", "remote_address", "remote_port"}
	return &weightCollector{
		src: src,
		configured: newTypedDesc("lvs_node_real_server_configured_weight",
			"Weight of the real server in the configuration.", prometheus.GaugeValue, labels...),
		effective: newTypedDesc("lvs_node_real_server_effective_weight",
			"Weight the director gives the real server from its configured weight and its inputs (health, drain, agent, load feedback, quorum); 0 also when it is removed.",
			prometheus.GaugeValue, labels...),
	}
}

// Describe implements prometheus.Collector.
func (c *weightCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.configured.desc
	ch <- c.effective.desc
}

// Collect implements prometheus.Collector.
func (c *weightCollector) Collect(ch chan<- prometheus.Metric) {
	cfg, in := c.src.Config(), c.src.Inputs()
	if cfg == nil {
		return
	}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		w := vs.weights(in)
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			l := []string{vs.Name, rs.addr.String(), strconv.Itoa(int(*rs.Port))}
			conf := float64(*rs.Weight)
			eff := conf
			if w.servers != nil {
				eff = float64(w.servers[j].Weight)
			}
			ch <- c.configured.metric(conf, l...)
			ch <- c.effective.metric(eff, l...)
		}
	}
}
