package toa

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFindModulesFixture(t *testing.T) {
	mods, err := FindModules(Options{Root: "testdata/module-root"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 1 {
		t.Fatalf("found %d modules, want 1 (toa; ipv6 is not one): %+v", len(mods), mods)
	}
	m := mods[0]
	if m.Name != "toa" || m.Version != "2.0.0.0" || m.Params["tcpopt_addr"] != "254" || m.StatsFile != "/proc/net/toa_stats" {
		t.Fatalf("module %+v", m)
	}
	if v, ok := m.Stats.Get("syn_recv_sock_toa"); !ok || v != 2201 {
		t.Fatalf("syn_recv_sock_toa = %d, %v; want 1204+997", v, ok)
	}
	if v, _ := m.Stats.Get("ip6_addr_alloc"); v != 0 || len(m.Stats.CPUs) != 2 {
		t.Fatalf("stats %+v", m.Stats)
	}
	// No module: an empty list.
	if mods, err := FindModules(Options{Root: "testdata/old-root"}); err != nil || len(mods) != 0 {
		t.Fatalf("old-root: %v, %v", mods, err)
	}
}

func TestStatsTableRoundTrip(t *testing.T) {
	b, err := os.ReadFile("testdata/module-root/proc/net/toa_stats")
	if err != nil {
		t.Fatal(err)
	}
	tab, err := ParseStatsTable(string(b))
	if err != nil {
		t.Fatal(err)
	}
	// Our rendering in the modules' layout parses back to the same.
	again, err := ParseStatsTable(tab.Format())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := again.Format(), tab.Format(); got != want {
		t.Fatalf("round trip:\n%s\nwant\n%s", got, want)
	}
	// Each counter line has the module's %-25s: name column.
	for _, line := range strings.Split(tab.Format(), "\n")[1:] {
		if line != "" && line[25] != ':' {
			t.Fatalf("line %q: colon not in column 26", line)
		}
	}
	for _, bad := range []string{"", "CPU0\nname 1\n", "CPU0 CPU1\nname: 1\n", "CPU0\nname: x\n"} {
		if _, err := ParseStatsTable(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestPreflightRefusesOldKernelAndModule(t *testing.T) {
	_, err := Preflight(Config{}, Options{Root: "testdata/old-root"})
	if !errors.Is(err, ErrKernel) || !strings.Contains(err.Error(), "5.4.0") || !strings.Contains(err.Error(), "5.10") {
		t.Fatalf("old kernel: %v", err)
	}
	_, err = Preflight(Config{}, Options{Root: "testdata/module-root"})
	if !errors.Is(err, ErrModuleLoaded) || !strings.Contains(err.Error(), "toa") {
		t.Fatalf("module loaded: %v", err)
	}
	if _, err := Attach(Config{}, Options{Root: "testdata/module-root", PinDir: t.TempDir() + "/pins"}); !errors.Is(err, ErrModuleLoaded) {
		t.Fatalf("attach with a module loaded: %v", err)
	}
}

func TestConfigCheck(t *testing.T) {
	for _, c := range []Config{{Cgroup: "relative"}, {Kinds: []uint8{7}}} {
		if err := c.Check(); err == nil {
			t.Errorf("%+v passed", c)
		}
	}
	if s, err := (Config{}).Formats(); err != nil || s.String() != "254/8,254/20,253/20" {
		t.Fatalf("default formats %s, %v", s, err)
	}
}

func TestDoctorFixtures(t *testing.T) {
	good := Doctor(Options{Root: "testdata/module-root"}, nil)
	if !Healthy(good) {
		t.Fatalf("module-root should pass (the module is a warning):\n%s", FormatChecks(good))
	}
	out := FormatChecks(good)
	for _, want := range []string{"ok    kernel", "6.1.0-57-amd64", "warn  TOA modules", "rmmod toa", "ok    bpffs", "ok    cgroup v2"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	bad := Doctor(Options{Root: "testdata/old-root"}, nil)
	if Healthy(bad) {
		t.Fatal("old-root passed")
	}
	out = FormatChecks(bad)
	for _, want := range []string{"FAIL  kernel", "5.10", "FAIL  cgroup v2", "FAIL  bpffs", "mount -t bpf bpf /sys/fs/bpf", "FAIL  capabilities", "CAP_NET_ADMIN", "warn  BTF"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

func TestCollectorModuleFixture(t *testing.T) {
	c := NewCollector(Options{Root: "testdata/module-root", PinDir: t.TempDir() + "/none"})
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	want := `
# HELP lvs_node_toa_attached Whether eBPF TOA is attached (1) or not (0).
# TYPE lvs_node_toa_attached gauge
lvs_node_toa_attached 0
# HELP lvs_node_toa_module_events_total Counters of a loaded TOA kernel module, from its /proc/net statistics file.
# TYPE lvs_node_toa_module_events_total counter
lvs_node_toa_module_events_total{event="getname_toa_bypass",module="toa"} 5
lvs_node_toa_module_events_total{event="getname_toa_empty",module="toa"} 621
lvs_node_toa_module_events_total{event="getname_toa_mismatch",module="toa"} 2
lvs_node_toa_module_events_total{event="getname_toa_ok",module="toa"} 4400
lvs_node_toa_module_events_total{event="ip6_addr_alloc",module="toa"} 0
lvs_node_toa_module_events_total{event="ip6_addr_free",module="toa"} 0
lvs_node_toa_module_events_total{event="syn_recv_sock_no_toa",module="toa"} 43
lvs_node_toa_module_events_total{event="syn_recv_sock_toa",module="toa"} 2201
# HELP lvs_node_toa_module_loaded A loaded TOA kernel module.
# TYPE lvs_node_toa_module_loaded gauge
lvs_node_toa_module_loaded{module="toa",version="2.0.0.0"} 1
# HELP lvs_node_toa_scrape_success Whether the TOA counters could be read (1) or not (0).
# TYPE lvs_node_toa_scrape_success gauge
lvs_node_toa_scrape_success 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	var _ prometheus.Collector = c
}

func TestParseMountinfoEscapes(t *testing.T) {
	ms := parseMountinfo([]byte("1 2 0:1 / /a\\040b rw - cgroup2 x rw\nbroken line\n"))
	if len(ms) != 1 || ms[0].Point != "/a b" || ms[0].FSType != "cgroup2" {
		t.Fatalf("%+v", ms)
	}
}
