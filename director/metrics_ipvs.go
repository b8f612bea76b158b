package director

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// snapshotSource gives the IPVS table as last read from the kernel and the
// names of the services lvs-node manages in it (an *Engine).
type snapshotSource interface {
	Snapshot() (*ipvs.Table, map[ipvs.ServiceKey]string)
}

// ipvsStats are the descriptions of the five 64-bit kernel counters.
type ipvsStats struct {
	conns, inPkts, outPkts, inBytes, outBytes typedDesc
}

func newIPVSStats(prefix, of string, labels []string) ipvsStats {
	c := func(name, help string) typedDesc {
		return newTypedDesc(prefix+name, help+" "+of+", as of the last reconciliation.", prometheus.CounterValue, labels...)
	}
	return ipvsStats{
		conns:    c("connections_total", "Connections scheduled"),
		inPkts:   c("incoming_packets_total", "Packets received"),
		outPkts:  c("outgoing_packets_total", "Packets sent"),
		inBytes:  c("incoming_bytes_total", "Bytes received"),
		outBytes: c("outgoing_bytes_total", "Bytes sent"),
	}
}

func (s ipvsStats) descs() []typedDesc {
	return []typedDesc{s.conns, s.inPkts, s.outPkts, s.inBytes, s.outBytes}
}

func (s ipvsStats) collect(ch chan<- prometheus.Metric, st ipvs.Stats, labels []string) {
	ch <- s.conns.metric(float64(st.Conns), labels...)
	ch <- s.inPkts.metric(float64(st.InPkts), labels...)
	ch <- s.outPkts.metric(float64(st.OutPkts), labels...)
	ch <- s.inBytes.metric(float64(st.InBytes), labels...)
	ch <- s.outBytes.metric(float64(st.OutBytes), labels...)
}

// ipvsCollector exports the services lvs-node manages, with the kernel's
// counters and the state of their real servers, from the table the
// engine read at its last reconciliation. Services it does not manage
// are only counted.
type ipvsCollector struct {
	src snapshotSource

	services                                      typedDesc
	service, backend                              ipvsStats
	backendActive, backendInactive, backendWeight typedDesc
}

func newIPVSCollector(src snapshotSource) *ipvsCollector {
	const p = "lvs_node_ipvs_"
	// The configured name of the service, then node_exporter's IPVS
	// labels. A firewall-mark service has proto "FWM", an empty
	// local_address, local_port "0" and its mark in decimal in local_mark;
	// other services have an empty local_mark.
	serviceLabels := []string{"service", "local_address", "local_port", "proto", "local_mark"}
	backendLabels := []string{"service", "local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"}
	gauge := func(name, help string) typedDesc {
		return newTypedDesc(p+name, help+" As of the last reconciliation.", prometheus.GaugeValue, backendLabels...)
	}
	return &ipvsCollector{
		src:             src,
		services:        newTypedDesc(p+"services", "Virtual services in the kernel table, managed or not, as of the last reconciliation.", prometheus.GaugeValue),
		service:         newIPVSStats(p+"service_", "by a managed virtual service", serviceLabels),
		backend:         newIPVSStats(p+"backend_", "by a real server of a managed virtual service", backendLabels),
		backendActive:   gauge("backend_connections_active", "Active connections of a real server."),
		backendInactive: gauge("backend_connections_inactive", "Inactive connections of a real server."),
		backendWeight:   gauge("backend_weight", "Weight of a real server."),
	}
}

// Describe implements prometheus.Collector.
func (c *ipvsCollector) Describe(ch chan<- *prometheus.Desc) {
	ds := append([]typedDesc{c.services, c.backendActive, c.backendInactive, c.backendWeight}, c.service.descs()...)
	for _, d := range append(ds, c.backend.descs()...) {
		ch <- d.desc
	}
}

// Collect implements prometheus.Collector. Before the first reconciliation
// there is no table and nothing is collected.
func (c *ipvsCollector) Collect(ch chan<- prometheus.Metric) {
	t, names := c.src.Snapshot()
	if t == nil {
		return
	}
	ch <- c.services.metric(float64(len(t.Services)))
	for i := range t.Services {
		s := &t.Services[i]
		name, ok := names[ipvs.NormKey(s.ServiceKey)]
		if !ok {
			continue
		}
		local, port, proto, mark := ipvsServiceLabelValues(s.ServiceKey)
		c.service.collect(ch, s.Stats, []string{name, local, port, proto, mark})
		for _, d := range s.Dests {
			l := []string{name, local, port, d.Addr.String(), strconv.FormatUint(uint64(d.Port), 10), proto, mark}
			c.backend.collect(ch, d.Stats, l)
			ch <- c.backendActive.metric(float64(d.ActiveConns), l...)
			ch <- c.backendInactive.metric(float64(d.InactConns), l...)
			ch <- c.backendWeight.metric(float64(d.Weight), l...)
		}
	}
}

// ipvsServiceLabelValues returns the local_address, local_port, proto and
// local_mark label values of a service, as node_exporter names them from
// /proc/net/ip_vs.
func ipvsServiceLabelValues(k ipvs.ServiceKey) (local, port, proto, mark string) {
	if k.FWMark != 0 {
		return "", "0", "FWM", strconv.FormatUint(uint64(k.FWMark), 10)
	}
	return k.Addr.String(), strconv.FormatUint(uint64(k.Port), 10), strings.ToUpper(k.Protocol.String()), ""
}
