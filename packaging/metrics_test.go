package packaging_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	yaml "go.yaml.in/yaml/v3"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/rsagent"
)

// pendingMetrics are named by the dashboard and the alert rules ahead of
// the code that exports them. Once a daemon exports one, this test fails
// until it is taken off the list, and from then on its labels are
// checked too.
var pendingMetrics = []string{}

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = []string{"instance", "job"}

// syncedKernel is an IPVS table that already holds what the configuration
// asks for, with traffic counted. Any change asked of it fails the test's
// premise and is refused, as the kernel refuses a duplicate service.
type syncedKernel struct{ t *ipvs.Table }

func (k syncedKernel) Table(context.Context) (*ipvs.Table, error) { return k.t, nil }

func (k syncedKernel) Apply(_ context.Context, ops []ipvs.Op) error {
	if len(ops) > 0 {
		return &ipvs.OpError{Index: 0, Op: ops[0], Err: fmt.Errorf("file exists: the table is already in sync"), Sent: 1}
	}
	return nil
}

const metricsDirectorConfig = `director:
  state_dir: %s
listen: {metrics: "", control: ""}
virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    scheduler: wlc
    health_check: {type: http, path: /health}
    feedback: {port: 3262}
    real_servers: [{address: 10.0.0.11, port: 80, weight: 100}]
`

// directorMetrics returns the director's metrics registry after a
// reconciliation against a table with traffic, and its /metrics handler.
func directorMetrics(t *testing.T) http.Handler {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "director.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(metricsDirectorConfig, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := director.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	st := ipvs.Stats{Conns: 1200, InPkts: 98000, OutPkts: 0, InBytes: 7.2e6, CPS: 3, InPPS: 40, InBPS: 3000}
	table := &ipvs.Table{Services: []ipvs.ServiceEntry{{
		Service: ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: ipvs.FamilyOf(netip.MustParseAddr("10.0.0.100")), Protocol: ipvs.TCP, Addr: netip.MustParseAddr("10.0.0.100"), Port: 80},
			Scheduler: "wlc", Flags: ipvs.FlagHashed, Netmask: 0xffffffff},
		Stats: st,
		Dests: []ipvs.DestEntry{{
			Destination: ipvs.Destination{DestKey: ipvs.DestKey{Addr: netip.MustParseAddr("10.0.0.11"), Port: 80}, Forward: ipvs.Route, Weight: 100},
			DestStatus:  ipvs.DestStatus{ActiveConns: 7, InactConns: 30, Stats: st},
		}},
	}}}
	e := director.NewEngine(dir, director.Deps{Kernel: syncedKernel{table}, Log: slog.New(slog.DiscardHandler)})
	// The health checks and agents of the file, set up but not run: their
	// series are exported without a packet sent. The real server serving
	// in the kernel starts up, as at a daemon's start.
	mon, err := director.NewMonitor(e, dir, nil, director.MonitorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Seed(t.Context(), cfg, false); err != nil {
		t.Fatal(err)
	}
	if ops, err := e.Apply(t.Context(), cfg); err != nil || len(ops) != 0 {
		t.Fatalf("apply over a table in sync: %d changes, %v", len(ops), err)
	}
	if err := mon.Load(cfg); err != nil {
		t.Fatal(err)
	}
	return director.MetricsHandler(director.NewMetricsRegistry(e, mon.MetricGroups()), e, nil)
}

// scrape GETs /metrics from h in the text format.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	return string(b)
}

// exported maps each metric name in exposition text to its label names.
func exported(t *testing.T, text string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? `)
	label := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := sample.FindStringSubmatch(sc.Text())
		if m == nil {
			if line := sc.Text(); strings.HasPrefix(line, "# TYPE ") {
				out[strings.Fields(line)[2]] = out[strings.Fields(line)[2]]
			}
			continue
		}
		for _, l := range label.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(out[m[1]], l[1]) {
				out[m[1]] = append(out[m[1]], l[1])
			}
		}
		if _, ok := out[m[1]]; !ok {
			out[m[1]] = nil
		}
	}
	return out
}

// realserverMetrics is the real server's registry, as its daemon serves it.
func realserverMetrics(t *testing.T) map[string][]string {
	t.Helper()
	families, err := rsagent.NewMetrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, f := range families {
		out[f.GetName()] = labelNames(f)
	}
	return out
}

func labelNames(f *dto.MetricFamily) []string {
	var names []string
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if !slices.Contains(names, l.GetName()) {
				names = append(names, l.GetName())
			}
		}
	}
	return names
}

// promQL is one expression and where it comes from.
type promQL struct{ where, expr string }

func dashboardQueries(t *testing.T) []promQL {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging/grafana/lvs-node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/lvs-node.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard has no uid or title")
	}
	var out []promQL
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			out = append(out, promQL{"dashboard panel " + p.Title, q.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			out = append(out, promQL{"dashboard variable " + v.Name, v.Definition})
		}
	}
	return out
}

func alertQueries(t *testing.T) ([]promQL, []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging/prometheus/lvs-node.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	var out []promQL
	var names []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out = append(out, promQL{"alert " + r.Alert, r.Expr})
			names = append(names, r.Alert)
		}
	}
	return out, names
}

var (
	metricName = regexp.MustCompile(`\b((?:lvs_node|process|go)_[a-z0-9_]+)\b(\{[^}]*\})?`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	grouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
)

// The dashboard and the alert rules name only metrics that lvs-node
// exports (or that are pending, see pendingMetrics), with labels those
// metrics carry.
func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	have := exported(t, scrape(t, directorMetrics(t)))
	for name, labels := range realserverMetrics(t) {
		have[name] = labels
	}
	for _, p := range pendingMetrics {
		if _, ok := have[p]; ok {
			t.Errorf("%s is exported now: take it off pendingMetrics", p)
		}
	}
	queries := dashboardQueries(t)
	alerts, names := alertQueries(t)
	queries = append(queries, alerts...)
	used := map[string]bool{}
	for _, q := range queries {
		refs := metricName.FindAllStringSubmatch(q.expr, -1)
		if len(refs) == 0 {
			t.Errorf("%s names no lvs-node metric: %s", q.where, q.expr)
		}
		var labelsHere []string
		for _, r := range refs {
			used[r[1]] = true
			if slices.Contains(pendingMetrics, r[1]) {
				continue
			}
			labels, ok := have[r[1]]
			if !ok {
				t.Errorf("%s names %s, which lvs-node does not export", q.where, r[1])
				continue
			}
			labelsHere = append(labelsHere, labels...)
			for _, m := range matcher.FindAllStringSubmatch(r[2], -1) {
				if !slices.Contains(labels, m[1]) && !slices.Contains(targetLabels, m[1]) {
					t.Errorf("%s selects %s by %q, a label it does not have (%v)", q.where, r[1], m[1], labels)
				}
			}
		}
		// Labels grouped by must exist on some series of the expression
		// (pending metrics aside).
		for _, g := range grouping.FindAllStringSubmatch(q.expr, -1) {
			for _, l := range strings.Split(g[1], ",") {
				l = strings.TrimSpace(l)
				if l == "" || slices.Contains(targetLabels, l) || slices.Contains(labelsHere, l) {
					continue
				}
				if !usesPending(q.expr) {
					t.Errorf("%s groups by %q, which none of its metrics has", q.where, l)
				}
			}
		}
	}
	for _, p := range pendingMetrics {
		if !used[p] {
			t.Errorf("pending metric %s is used nowhere: take it off the list", p)
		}
	}
	for _, want := range []string{"LvsNodeRealServerDown", "LvsNodeServiceWithoutHealthyServers", "LvsNodeDirectorDriftRepaired",
		"LvsNodeRealServerDriftRepaired", "LvsNodeDirectorReloadFailed", "LvsNodeRealServerReloadFailed", "LvsNodeAgentStale"} {
		if !slices.Contains(names, want) {
			t.Errorf("alert %s is missing", want)
		}
	}
	var names2 []string
	for n := range used {
		names2 = append(names2, n)
	}
	sort.Strings(names2)
	t.Logf("metrics used: %s", strings.Join(names2, " "))
}

func usesPending(expr string) bool {
	for _, p := range pendingMetrics {
		if strings.Contains(expr, p) {
			return true
		}
	}
	return false
}

// promtool accepts the alert rules.
func TestPromtoolCheckRules(t *testing.T) {
	need(t, "promtool")
	out, err := exec.Command("promtool", "check", "rules", filepath.Join(repoRoot(t), "packaging/prometheus/lvs-node.rules.yml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// promtoolCheckMetrics feeds exposition text to promtool check metrics,
// which fails on malformed output and on names or help that break the
// Prometheus conventions.
func promtoolCheckMetrics(t *testing.T, what, text string) {
	t.Helper()
	need(t, "promtool")
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("promtool check metrics on the %s's /metrics: %v\n%s", what, err, out)
	}
}

// The director's /metrics, after a reconciliation with traffic counted,
// passes promtool check metrics.
func TestPromtoolCheckDirectorMetrics(t *testing.T) {
	text := scrape(t, directorMetrics(t))
	for _, want := range []string{`lvs_node_ipvs_backend_connections_active{local_address="10.0.0.100",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.11",remote_port="80",service="web"} 7`, "lvs_node_director_applies_total 1"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the director's metrics lack %s:\n%s", want, text)
		}
	}
	promtoolCheckMetrics(t, "director", text)
}
