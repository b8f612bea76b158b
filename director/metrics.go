package director

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// MetricsHandler serves the engine's counters and the IPVS table as of the
// last reconciliation in the Prometheus text format. It is read-only.
func MetricsHandler(e *Engine) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only endpoint", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		var b bytes.Buffer
		WriteMetrics(&b, e)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(b.Bytes())
	})
}

// WriteMetrics writes the metrics of e to w.
func WriteMetrics(w io.Writer, e *Engine) {
	c := e.Counters()
	m := metricWriter{w: w}
	m.family("lvs_node_director_applies_total", "counter", "Reconciliations of the kernel with the configuration.")
	m.sample("lvs_node_director_applies_total", "", float64(c.Applies))
	m.family("lvs_node_director_apply_errors_total", "counter", "Reconciliations that failed.")
	m.sample("lvs_node_director_apply_errors_total", "", float64(c.ApplyErrors))
	m.family("lvs_node_director_resyncs_total", "counter", "Periodic resyncs.")
	m.sample("lvs_node_director_resyncs_total", "", float64(c.Resyncs))
	m.family("lvs_node_director_drift_repairs_total", "counter", "IPVS operations resyncs applied to repair drift.")
	m.sample("lvs_node_director_drift_repairs_total", "", float64(c.Repairs))
	m.family("lvs_node_director_reloads_total", "counter", "Reload requests by result.")
	m.sample("lvs_node_director_reloads_total", `result="ok"`, float64(c.Reloads-c.ReloadErrors))
	m.sample("lvs_node_director_reloads_total", `result="error"`, float64(c.ReloadErrors))
	m.family("lvs_node_director_operations_total", "counter", "IPVS operations applied.")
	m.sample("lvs_node_director_operations_total", "", float64(c.OpsApplied))
	m.family("lvs_node_director_last_apply_success", "gauge", "1 when the last reconciliation succeeded.")
	ok := 0.0
	if c.LastOK {
		ok = 1
	}
	m.sample("lvs_node_director_last_apply_success", "", ok)
	if !c.LastApply.IsZero() {
		m.family("lvs_node_director_last_apply_timestamp_seconds", "gauge", "When the last reconciliation started.")
		m.sample("lvs_node_director_last_apply_timestamp_seconds", "", float64(c.LastApply.UnixNano())/1e9)
		m.family("lvs_node_director_last_apply_duration_seconds", "gauge", "How long the last reconciliation took.")
		m.sample("lvs_node_director_last_apply_duration_seconds", "", c.LastDuration.Seconds())
	}

	t, names := e.Snapshot()
	if t == nil {
		return
	}
	m.family("lvs_node_ipvs_services", "gauge", "Virtual services in the kernel table, managed or not.")
	m.sample("lvs_node_ipvs_services", "", float64(len(t.Services)))
	type row struct {
		labels string
		s      ipvs.ServiceEntry
	}
	var rows []row
	for _, s := range t.Services {
		if name, ok := names[normKey(s.ServiceKey)]; ok {
			rows = append(rows, row{fmt.Sprintf(`service=%q,key=%q`, name, s.ServiceKey.String()), s})
		}
	}
	m.family("lvs_node_ipvs_service_connections_total", "counter", "Connections scheduled by a managed service (as of the last reconciliation).")
	for _, r := range rows {
		m.sample("lvs_node_ipvs_service_connections_total", r.labels, float64(r.s.Stats.Conns))
	}
	for _, g := range []struct {
		name, help string
		v          func(ipvs.DestEntry) float64
	}{
		{"lvs_node_ipvs_backend_weight", "Weight of a real server.", func(d ipvs.DestEntry) float64 { return float64(d.Weight) }},
		{"lvs_node_ipvs_backend_connections_active", "Active connections of a real server.", func(d ipvs.DestEntry) float64 { return float64(d.ActiveConns) }},
		{"lvs_node_ipvs_backend_connections_inactive", "Inactive connections of a real server.", func(d ipvs.DestEntry) float64 { return float64(d.InactConns) }},
	} {
		m.family(g.name, "gauge", g.help+" As of the last reconciliation.")
		for _, r := range rows {
			for _, d := range r.s.Dests {
				m.sample(g.name, r.labels+`,real_server="`+netip.AddrPortFrom(d.Addr, d.Port).String()+`"`, g.v(d))
			}
		}
	}
}

type metricWriter struct{ w io.Writer }

func (m metricWriter) family(name, typ, help string) {
	fmt.Fprintf(m.w, "# HELP %s %s\n# TYPE %s %s\n", name, strings.ReplaceAll(help, "\n", " "), name, typ)
}

func (m metricWriter) sample(name, labels string, v float64) {
	if labels != "" {
		name += "{" + labels + "}"
	}
	fmt.Fprintf(m.w, "%s %s\n", name, strconv.FormatFloat(v, 'g', -1, 64))
}
