package director

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// fakeCounters is a fixed set of engine totals.
type fakeCounters Counters

func (f fakeCounters) Counters() Counters { return Counters(f) }

// fakeSnapshot is a fixed kernel table and the names of the managed
// services in it; it prints itself as ipvsadm-save lines.
type fakeSnapshot struct {
	t     *ipvs.Table
	names map[ipvs.ServiceKey]string
}

func (f fakeSnapshot) Snapshot() (*ipvs.Table, map[ipvs.ServiceKey]string) { return f.t, f.names }

func (f fakeSnapshot) String() string {
	if f.t == nil {
		return "(no table)"
	}
	return formatTable(f.t)
}

func TestEngineCollector(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Counters
		want string
	}{{
		name: "before the first reconciliation",
		want: `
# HELP lvs_node_director_applies_total Reconciliations of the kernel with the configuration.
# TYPE lvs_node_director_applies_total counter
lvs_node_director_applies_total 0
# HELP lvs_node_director_apply_errors_total Reconciliations that failed.
# TYPE lvs_node_director_apply_errors_total counter
lvs_node_director_apply_errors_total 0
# HELP lvs_node_director_drift_repairs_total IPVS operations resyncs applied to repair drift.
# TYPE lvs_node_director_drift_repairs_total counter
lvs_node_director_drift_repairs_total 0
# HELP lvs_node_director_last_apply_success 1 when the last reconciliation succeeded, else 0.
# TYPE lvs_node_director_last_apply_success gauge
lvs_node_director_last_apply_success 0
# HELP lvs_node_director_operations_total IPVS operations applied.
# TYPE lvs_node_director_operations_total counter
lvs_node_director_operations_total 0
# HELP lvs_node_director_reloads_total Reload requests by result.
# TYPE lvs_node_director_reloads_total counter
lvs_node_director_reloads_total{result="error"} 0
lvs_node_director_reloads_total{result="ok"} 0
# HELP lvs_node_director_resyncs_total Periodic resyncs.
# TYPE lvs_node_director_resyncs_total counter
lvs_node_director_resyncs_total 0
`,
	}, {
		name: "after reconciliations",
		c: Counters{Applies: 9, ApplyErrors: 2, Resyncs: 5, Repairs: 3, Reloads: 4, ReloadErrors: 1, OpsApplied: 1 << 40,
			LastApply: time.Unix(1700000000, 250e6), LastDuration: 1500 * time.Millisecond, LastOK: true},
		want: `
# HELP lvs_node_director_applies_total Reconciliations of the kernel with the configuration.
# TYPE lvs_node_director_applies_total counter
lvs_node_director_applies_total 9
# HELP lvs_node_director_apply_errors_total Reconciliations that failed.
# TYPE lvs_node_director_apply_errors_total counter
lvs_node_director_apply_errors_total 2
# HELP lvs_node_director_drift_repairs_total IPVS operations resyncs applied to repair drift.
# TYPE lvs_node_director_drift_repairs_total counter
lvs_node_director_drift_repairs_total 3
# HELP lvs_node_director_last_apply_duration_seconds How long the last reconciliation took.
# TYPE lvs_node_director_last_apply_duration_seconds gauge
lvs_node_director_last_apply_duration_seconds 1.5
# HELP lvs_node_director_last_apply_success 1 when the last reconciliation succeeded, else 0.
# TYPE lvs_node_director_last_apply_success gauge
lvs_node_director_last_apply_success 1
# HELP lvs_node_director_last_apply_timestamp_seconds When the last reconciliation started, in seconds since the epoch.
# TYPE lvs_node_director_last_apply_timestamp_seconds gauge
lvs_node_director_last_apply_timestamp_seconds 1700000000.25
# HELP lvs_node_director_operations_total IPVS operations applied.
# TYPE lvs_node_director_operations_total counter
lvs_node_director_operations_total 1099511627776
# HELP lvs_node_director_reloads_total Reload requests by result.
# TYPE lvs_node_director_reloads_total counter
lvs_node_director_reloads_total{result="error"} 1
lvs_node_director_reloads_total{result="ok"} 3
# HELP lvs_node_director_resyncs_total Periodic resyncs.
# TYPE lvs_node_director_resyncs_total counter
lvs_node_director_resyncs_total 5
`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newEngineCollector(fakeCounters(tc.c))
			if err := testutil.CollectAndCompare(c, strings.NewReader(tc.want)); err != nil {
				t.Error(err)
			}
			lint(t, c)
		})
	}
}

// ipvsSnapshot is a table with a managed address service (two real
// servers, one drained), a managed IPv6 firewall-mark service stored the
// way the kernel reports it (protocol TCP), and a service lvs-node does
// not manage.
func ipvsSnapshot() fakeSnapshot {
	web := svc("10.0.0.100", 80, "wlc")
	rs1 := dest("10.0.0.11", 80, 100)
	rs1.ActiveConns, rs1.InactConns = 3, 4
	rs1.Stats = ipvs.Stats{Conns: 6, InPkts: 120, InBytes: 1 << 39, CPS: 99}
	rs2 := dest("10.0.0.12", 80, 0)
	rs2.InactConns = 1
	rs2.Stats = ipvs.Stats{Conns: 4, InPkts: 80, InBytes: 1 << 39}
	webEntry := entry(web, rs1, rs2)
	webEntry.Stats = ipvs.Stats{Conns: 10, InPkts: 200, InBytes: 1 << 40, InBPS: 12345}

	mark := ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: ipvs.FamilyOf(netip.IPv6Unspecified()), Protocol: ipvs.TCP, FWMark: 7}, Scheduler: "rr", Netmask: 128}
	rs3 := dest("2001:db8::11", 53, 1)
	rs3.Forward = ipvs.Masq
	rs3.ActiveConns = 2
	rs3.Stats = ipvs.Stats{Conns: 2, InPkts: 4, OutPkts: 4, InBytes: 300, OutBytes: 500}
	markEntry := entry(mark, rs3)
	markEntry.Stats = rs3.Stats

	other := svc("10.0.0.200", 53, "rr")
	other.Protocol = ipvs.UDP
	otherEntry := entry(other, dest("10.0.0.21", 53, 1))
	otherEntry.Stats.Conns = 1000

	return fakeSnapshot{
		t: table(webEntry, markEntry, otherEntry),
		names: map[ipvs.ServiceKey]string{
			ipvs.NormKey(web.ServiceKey):  "web",
			ipvs.NormKey(mark.ServiceKey): "dns6",
		},
	}
}

const ipvsWant = `
# HELP lvs_node_ipvs_services Virtual services in the kernel table, managed or not, as of the last reconciliation.
# TYPE lvs_node_ipvs_services gauge
lvs_node_ipvs_services 3
# HELP lvs_node_ipvs_service_connections_total Connections scheduled by a managed virtual service, as of the last reconciliation.
# TYPE lvs_node_ipvs_service_connections_total counter
lvs_node_ipvs_service_connections_total{local_address="",local_mark="7",local_port="0",proto="FWM",service="dns6"} 2
lvs_node_ipvs_service_connections_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",service="web"} 10
# HELP lvs_node_ipvs_service_incoming_packets_total Packets received by a managed virtual service, as of the last reconciliation.
# TYPE lvs_node_ipvs_service_incoming_packets_total counter
lvs_node_ipvs_service_incoming_packets_total{local_address="",local_mark="7",local_port="0",proto="FWM",service="dns6"} 4
lvs_node_ipvs_service_incoming_packets_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",service="web"} 200
# HELP lvs_node_ipvs_service_outgoing_packets_total Packets sent by a managed virtual service, as of the last reconciliation.
# TYPE lvs_node_ipvs_service_outgoing_packets_total counter
lvs_node_ipvs_service_outgoing_packets_total{local_address="",local_mark="7",local_port="0",proto="FWM",service="dns6"} 4
lvs_node_ipvs_service_outgoing_packets_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",service="web"} 0
# HELP lvs_node_ipvs_service_incoming_bytes_total Bytes received by a managed virtual service, as of the last reconciliation.
# TYPE lvs_node_ipvs_service_incoming_bytes_total counter
lvs_node_ipvs_service_incoming_bytes_total{local_address="",local_mark="7",local_port="0",proto="FWM",service="dns6"} 300
lvs_node_ipvs_service_incoming_bytes_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",service="web"} 1099511627776
# HELP lvs_node_ipvs_service_outgoing_bytes_total Bytes sent by a managed virtual service, as of the last reconciliation.
# TYPE lvs_node_ipvs_service_outgoing_bytes_total counter
lvs_node_ipvs_service_outgoing_bytes_total{local_address="",local_mark="7",local_port="0",proto="FWM",service="dns6"} 500
lvs_node_ipvs_service_outgoing_bytes_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",service="web"} 0
# HELP lvs_node_ipvs_backend_connections_total Connections scheduled by a real server of a managed virtual service, as of the last reconciliation.
# TYPE lvs_node_ipvs_backend_connections_total counter
lvs_node_ipvs_backend_connections_total{local_address="",local_mark="7",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="53",service="dns6"} 2
lvs_node_ipvs_backend_connections_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.11",remote_port="80",service="web"} 6
lvs_node_ipvs_backend_connections_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.12",remote_port="80",service="web"} 4
# HELP lvs_node_ipvs_backend_incoming_packets_total Packets received by a real server of a managed virtual service, as of the last reconciliation.
# TYPE lvs_node_ipvs_backend_incoming_packets_total counter
lvs_node_ipvs_backend_incoming_packets_total{local_address="",local_mark="7",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="53",service="dns6"} 4
lvs_node_ipvs_backend_incoming_packets_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.11",remote_port="80",service="web"} 120
lvs_node_ipvs_backend_incoming_packets_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.12",remote_port="80",service="web"} 80
# HELP lvs_node_ipvs_backend_outgoing_packets_total Packets sent by a real server of a managed virtual service, as of the last reconciliation.
# TYPE lvs_node_ipvs_backend_outgoing_packets_total counter
lvs_node_ipvs_backend_outgoing_packets_total{local_address="",local_mark="7",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="53",service="dns6"} 4
lvs_node_ipvs_backend_outgoing_packets_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.11",remote_port="80",service="web"} 0
lvs_node_ipvs_backend_outgoing_packets_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.12",remote_port="80",service="web"} 0
# HELP lvs_node_ipvs_backend_incoming_bytes_total Bytes received by a real server of a managed virtual service, as of the last reconciliation.
# TYPE lvs_node_ipvs_backend_incoming_bytes_total counter
lvs_node_ipvs_backend_incoming_bytes_total{local_address="",local_mark="7",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="53",service="dns6"} 300
lvs_node_ipvs_backend_incoming_bytes_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.11",remote_port="80",service="web"} 549755813888
lvs_node_ipvs_backend_incoming_bytes_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.12",remote_port="80",service="web"} 549755813888
# HELP lvs_node_ipvs_backend_outgoing_bytes_total Bytes sent by a real server of a managed virtual service, as of the last reconciliation.
# TYPE lvs_node_ipvs_backend_outgoing_bytes_total counter
lvs_node_ipvs_backend_outgoing_bytes_total{local_address="",local_mark="7",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="53",service="dns6"} 500
lvs_node_ipvs_backend_outgoing_bytes_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.11",remote_port="80",service="web"} 0
lvs_node_ipvs_backend_outgoing_bytes_total{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.12",remote_port="80",service="web"} 0
# HELP lvs_node_ipvs_backend_connections_active Active connections of a real server. As of the last reconciliation.
# TYPE lvs_node_ipvs_backend_connections_active gauge
lvs_node_ipvs_backend_connections_active{local_address="",local_mark="7",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="53",service="dns6"} 2
lvs_node_ipvs_backend_connections_active{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.11",remote_port="80",service="web"} 3
lvs_node_ipvs_backend_connections_active{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.12",remote_port="80",service="web"} 0
# HELP lvs_node_ipvs_backend_connections_inactive Inactive connections of a real server. As of the last reconciliation.
# TYPE lvs_node_ipvs_backend_connections_inactive gauge
lvs_node_ipvs_backend_connections_inactive{local_address="",local_mark="7",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="53",service="dns6"} 0
lvs_node_ipvs_backend_connections_inactive{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.11",remote_port="80",service="web"} 4
lvs_node_ipvs_backend_connections_inactive{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.12",remote_port="80",service="web"} 1
# HELP lvs_node_ipvs_backend_weight Weight of a real server. As of the last reconciliation.
# TYPE lvs_node_ipvs_backend_weight gauge
lvs_node_ipvs_backend_weight{local_address="",local_mark="7",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="53",service="dns6"} 1
lvs_node_ipvs_backend_weight{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.11",remote_port="80",service="web"} 100
lvs_node_ipvs_backend_weight{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.12",remote_port="80",service="web"} 0
`

func TestIPVSCollector(t *testing.T) {
	snap := ipvsSnapshot()
	c := newIPVSCollector(snap)
	if err := testutil.CollectAndCompare(c, strings.NewReader(ipvsWant)); err != nil {
		t.Errorf("%v\nsnapshot:\n%s", err, snap)
	}
	lint(t, c)
}

func TestIPVSCollectorBeforeFirstReconciliation(t *testing.T) {
	if n := testutil.CollectAndCount(newIPVSCollector(fakeSnapshot{})); n != 0 {
		t.Errorf("collected %d metrics without a table, want none", n)
	}
}

// TestIPVSCollectorFromEngine reads the table through a real Engine: the
// names come from the configuration, the table from the fake kernel.
func TestIPVSCollectorFromEngine(t *testing.T) {
	r := newRig(t)
	r.apply(t, r.config(t, twoServices))
	if _, err := r.engine.Resync(t.Context()); err != nil {
		t.Fatal(err)
	}
	// An IPVS service lvs-node does not manage is counted, not exported.
	r.k.Run(ipvs.Op{Kind: ipvs.AddService, Service: svc("10.9.9.9", 25, "rr")})
	if _, err := r.engine.Resync(t.Context()); err != nil {
		t.Fatal(err)
	}
	const want = `
# HELP lvs_node_ipvs_services Virtual services in the kernel table, managed or not, as of the last reconciliation.
# TYPE lvs_node_ipvs_services gauge
lvs_node_ipvs_services 3
# HELP lvs_node_ipvs_backend_weight Weight of a real server. As of the last reconciliation.
# TYPE lvs_node_ipvs_backend_weight gauge
lvs_node_ipvs_backend_weight{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.11",remote_port="80",service="web"} 100
lvs_node_ipvs_backend_weight{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.12",remote_port="80",service="web"} 100
lvs_node_ipvs_backend_weight{local_address="10.0.0.100",local_mark="",local_port="8080",proto="TCP",remote_address="10.1.0.11",remote_port="9000",service="api"} 1
`
	if err := testutil.CollectAndCompare(newIPVSCollector(r.engine), strings.NewReader(want), "lvs_node_ipvs_services", "lvs_node_ipvs_backend_weight"); err != nil {
		t.Errorf("%v\nkernel:\n%s", err, r.k)
	}
}

func TestMetricsHandler(t *testing.T) {
	r := newRig(t)
	r.apply(t, r.config(t, twoServices))
	r.k.Run(opDelDest("10.0.0.100", 80, "10.0.0.11"))
	if _, err := r.engine.Resync(t.Context()); err != nil {
		t.Fatal(err)
	}
	reg := NewMetricsRegistry(r.engine)
	srv := httptest.NewServer(MetricsHandler(reg, r.engine, nil))
	defer srv.Close()

	const want = `
# HELP lvs_node_director_applies_total Reconciliations of the kernel with the configuration.
# TYPE lvs_node_director_applies_total counter
lvs_node_director_applies_total 2
# HELP lvs_node_director_drift_repairs_total IPVS operations resyncs applied to repair drift.
# TYPE lvs_node_director_drift_repairs_total counter
lvs_node_director_drift_repairs_total 1
# HELP lvs_node_director_resyncs_total Periodic resyncs.
# TYPE lvs_node_director_resyncs_total counter
lvs_node_director_resyncs_total 1
`
	if err := testutil.ScrapeAndCompare(srv.URL+"/metrics", strings.NewReader(want),
		"lvs_node_director_applies_total", "lvs_node_director_drift_repairs_total", "lvs_node_director_resyncs_total"); err != nil {
		t.Error(err)
	}

	// The whole registry lints clean, process and Go metrics included.
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range []string{"process_start_time_seconds", "go_goroutines", "promhttp_metric_handler_requests_total", "lvs_node_ipvs_backend_weight",
		"lvs_node_scrape_collector_success", "lvs_node_scrape_collector_duration_seconds"} {
		if !have[name] {
			t.Errorf("registry lacks %s", name)
		}
	}

	for _, tc := range []struct {
		method, path string
		code         int
		allow        string
		body         bool
	}{
		{http.MethodGet, "/metrics", http.StatusOK, "", true},
		{http.MethodHead, "/metrics", http.StatusOK, "", false},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed, "GET, HEAD", false},
		{http.MethodPut, "/metrics", http.StatusMethodNotAllowed, "GET, HEAD", false},
		{http.MethodDelete, "/metrics", http.StatusMethodNotAllowed, "GET, HEAD", false},
		{http.MethodGet, "/", http.StatusNotFound, "", false},
		{http.MethodGet, "/metrics/x", http.StatusNotFound, "", false},
		{http.MethodGet, "/healthz", http.StatusOK, "", false},
		{http.MethodGet, "/readyz", http.StatusOK, "", false},
		{http.MethodPost, "/readyz", http.StatusMethodNotAllowed, "GET, HEAD", false},
	} {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.code, tc.allow)
		}
		if got := strings.Contains(string(body), "lvs_node_director_drift_repairs_total 1\n"); got != tc.body {
			t.Errorf("%s %s: metrics in body %v, want %v:\n%s", tc.method, tc.path, got, tc.body, body)
		}
	}
}

// TestReadyz: not ready before a configuration is applied, nor after a
// reconciliation failed; ready once the kernel is in sync again.
func TestReadyz(t *testing.T) {
	r := newRig(t)
	srv := httptest.NewServer(MetricsHandler(NewMetricsRegistry(r.engine), r.engine, nil))
	defer srv.Close()
	code := func() int {
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := code(); c != http.StatusServiceUnavailable {
		t.Errorf("before the first apply: %d", c)
	}
	r.apply(t, r.config(t, twoServices))
	if c := code(); c != http.StatusOK {
		t.Errorf("after apply: %d", c)
	}
	r.k.FailTable(errors.New("netlink: no answer"))
	if _, err := r.engine.Resync(t.Context()); err == nil {
		t.Fatal("resync succeeded")
	}
	if c := code(); c != http.StatusServiceUnavailable {
		t.Errorf("after a failed resync: %d", c)
	}
	r.k.FailTable(nil)
	if _, err := r.engine.Resync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := code(); c != http.StatusOK {
		t.Errorf("after a good resync: %d", c)
	}
}

// TestMetricsRegistryIsPrivate runs two engines side by side: each registry
// reports its own engine, and nothing reaches the default registry.
func TestMetricsRegistryIsPrivate(t *testing.T) {
	a, b := newRig(t), newRig(t)
	a.apply(t, a.config(t, twoServices))
	b.apply(t, b.config(t, twoServices))
	b.apply(t, b.config(t, twoServices))
	for _, tc := range []struct {
		reg  *prometheus.Registry
		want string
	}{{NewMetricsRegistry(a.engine), "1"}, {NewMetricsRegistry(b.engine), "2"}} {
		MetricsHandler(tc.reg, nil, nil) // registers the handler's own metrics, twice is fine
		MetricsHandler(tc.reg, nil, nil)
		want := "# HELP lvs_node_director_applies_total Reconciliations of the kernel with the configuration.\n" +
			"# TYPE lvs_node_director_applies_total counter\n" +
			"lvs_node_director_applies_total " + tc.want + "\n"
		if err := testutil.GatherAndCompare(tc.reg, strings.NewReader(want), "lvs_node_director_applies_total"); err != nil {
			t.Error(err)
		}
	}
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "lvs_node_") || strings.HasPrefix(mf.GetName(), "promhttp_") {
			t.Errorf("default registry holds %s", mf.GetName())
		}
	}
}

func lint(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
