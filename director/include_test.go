package director

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// site is a director.yaml with include patterns and the files they name,
// in a directory of its own.
type site struct {
	dir, path string
}

func newSite(t *testing.T, head string) *site {
	t.Helper()
	s := &site{dir: t.TempDir()}
	s.path = filepath.Join(s.dir, "director.yaml")
	if err := os.MkdirAll(filepath.Join(s.dir, "services.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.write(t, "director.yaml", "director:\n  state_dir: "+filepath.Join(s.dir, "state")+"\n"+head)
	return s
}

// write writes a file of the site and makes it look older than the
// Loader's trust delay, as a file edited earlier would be; the times of
// a file written again are set back the same way, so that only its size,
// its content and its change time tell it changed.
func (s *site) write(t *testing.T, name, body string) {
	t.Helper()
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}

// services renders n classic services named prefix0.. on VIPs 10.x.y.z.
func services(prefix string, first, n int, weight int) string {
	var b strings.Builder
	for i := first; i < first+n; i++ {
		b.WriteString("- name: " + prefix + itoa(i) + "\n  vip: 10.9." + itoa(i/250) + "." + itoa(i%250+1) + "\n  port: 80\n  real_servers:\n")
		b.WriteString("    - {address: 10.8.0.1, weight: " + itoa(weight) + "}\n    - {address: 10.8.0.2}\n")
	}
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

func names(cfg *Config) string {
	var out []string
	for _, vs := range cfg.VirtualServices {
		out = append(out, vs.Name)
	}
	return strings.Join(out, " ")
}

func TestIncludeGlobOrder(t *testing.T) {
	s := newSite(t, "include: [services.d/*.yaml, extra/x.yaml, services.d/b.yaml]\nvirtual_services:\n"+indent(services("main", 0, 1, 5)))
	s.write(t, "services.d/b.yaml", services("b", 10, 2, 5))
	s.write(t, "services.d/a.yaml", services("a", 20, 1, 5))
	s.write(t, "services.d/c.yml", services("c", 30, 1, 5)) // not matched
	s.write(t, "services.d/empty.yaml", "# nothing here yet\n\n")
	if err := os.MkdirAll(filepath.Join(s.dir, "services.d", "dir.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "extra"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.write(t, "extra/x.yaml", services("x", 40, 1, 5))
	cfg, _, err := LoadConfig(s.path)
	if err != nil {
		t.Fatal(err)
	}
	// The main file's services, then each pattern's files sorted; a file
	// matched twice counts once, where first matched.
	if got, want := names(cfg), "main0 a20 b10 b11 x40"; got != want {
		t.Errorf("services %q, want %q", got, want)
	}
	plan, err := Desired(cfg, nil, nil)
	if err != nil || len(plan.Table.Services) != 5 {
		t.Fatalf("desired: %v %v", plan, err)
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}

func TestIncludeMissingDirectory(t *testing.T) {
	s := newSite(t, "include:\n  - services.d/*.yaml\n  - /nonexistent/lvs-node.d/*.yaml\n")
	_, _, err := LoadConfig(s.path)
	want := s.path + ":5:5: include[1]: directory /nonexistent/lvs-node.d: no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	// A directory without matching files is fine: no services.
	s = newSite(t, "include: [services.d/*.yaml]\n")
	cfg, _, err := LoadConfig(s.path)
	if err != nil || len(cfg.VirtualServices) != 0 {
		t.Fatalf("empty directory: %v %v", cfg, err)
	}
}

func TestIncludeDuplicateAcrossFiles(t *testing.T) {
	s := newSite(t, "include: [services.d/*.yaml]\n")
	s.write(t, "services.d/a.yaml", services("a", 0, 2, 5))
	s.write(t, "services.d/b.yaml", "- name: a1\n  vip: 10.7.0.1\n  port: 80\n- name: b\n  vip: 10.9.0.1\n  port: 80\n")
	_, _, err := LoadConfig(s.path)
	a, b := filepath.Join(s.dir, "services.d/a.yaml"), filepath.Join(s.dir, "services.d/b.yaml")
	want := b + ":1:3: [0].name: name \"a1\" is already used by " + a + ":7:3 ([1])\n" +
		b + ":6:3: [1].port: service TCP 10.9.0.1:80 is already defined by " + a + ":1:3 ([0])"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	if len(config.AsErrors(err)) != 2 {
		t.Errorf("not config.Errors: %T", err)
	}
}

func TestIncludeErrorNamesTheFile(t *testing.T) {
	s := newSite(t, "include: [services.d/*.yaml]\nvirtual_services:\n  - {name: m, vip: 10.1.1.1, port: 80, scheduler: bogus}\n")
	s.write(t, "services.d/a.yaml", services("a", 0, 1, 5))
	s.write(t, "services.d/b.yaml", services("b", 5, 1, 5)+"- name: bad\n  vip: 10.6.0.1\n  port: 80\n  real_servers:\n    - {address: 10.8.0.1, weight: 70000}\n")
	s.write(t, "services.d/c.yaml", "- name: c\n  vip: 10.5.0.1\n  port: [80\n")
	s.write(t, "services.d/d.yaml", "virtual_services: []\n")
	_, _, err := LoadConfig(s.path)
	b, c, d := filepath.Join(s.dir, "services.d/b.yaml"), filepath.Join(s.dir, "services.d/c.yaml"), filepath.Join(s.dir, "services.d/d.yaml")
	for _, want := range []string{
		s.path + ":5:40: virtual_services[0].scheduler: unknown scheduler \"bogus\"",
		b + ":11:27: [1].real_servers[0].weight: must be from 0 to 65535, got 70000",
		c + ":2:1: YAML syntax:",
		d + ":1:1: an included file is a list of virtual services",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
		}
	}
	// The main file's problems come first, then the files' in order.
	if es := config.AsErrors(err); len(es) != 4 || es[0].Pos.File != s.path || es[3].Pos.File != d {
		t.Errorf("problems out of order: %v", err)
	}
}

func TestIncludeCheckedWhole(t *testing.T) {
	s := newSite(t, "director: {auto_fwmark: {first: 1, last: 1}}\ninclude: [services.d/*.yaml]\n")
	s.write(t, "director.yaml", "director:\n  auto_fwmark: {first: 1, last: 1}\ninclude: [services.d/*.yaml]\n")
	s.write(t, "services.d/a.yaml", "- {name: a, vip: 10.0.0.1, ports: [80]}\n")
	s.write(t, "services.d/b.yaml", "- {name: b, vip: 10.0.0.2, ports: [80]}\n- {name: c, vip: 10.0.0.1, port: 80}\n")
	_, _, err := LoadConfig(s.path)
	a, b := filepath.Join(s.dir, "services.d/a.yaml"), filepath.Join(s.dir, "services.d/b.yaml")
	for _, want := range []string{
		s.path + ":2:3: director.auto_fwmark: range holds 1 marks but 2 services use ports:",
		b + ":2:28: [1].port: TCP 10.0.0.1:80 is already balanced by the ports: service " + a + ":1:3 ([0])",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
		}
	}
}

// siteRig is a site applied by an engine over the test kernel.
type siteRig struct {
	*site
	r      *rig
	loader *Loader
}

func newSiteRig(t *testing.T, files int) *siteRig {
	t.Helper()
	r := newRig(t)
	s := &siteRig{site: &site{dir: r.dir, path: filepath.Join(r.dir, "director.yaml")}, r: r}
	if err := os.MkdirAll(filepath.Join(r.dir, "services.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.write(t, "director.yaml", "director:\n  state_dir: "+r.dir+"\ninclude: [services.d/*.yaml]\n")
	for i := range files {
		s.write(t, "services.d/f"+itoa(10+i)+".yaml", services("s", i*10, 10, 5))
	}
	s.loader = NewLoader(s.path)
	// The files' times are set explicitly (see write): their stat can be
	// trusted at once. TestUntrustedStatIsReadAgain tests the delay.
	s.loader.trustAfter = 0
	r.apply(t, s.load(t))
	return s
}

func (s *siteRig) load(t *testing.T) *Config {
	t.Helper()
	cfg, _, err := s.loader.Load()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestIncrementalReloadPlansTheChangedFile(t *testing.T) {
	s := newSiteRig(t, 10)
	if n := s.loader.reads.Load(); n != 11 {
		t.Fatalf("first load read %d files, want 11", n)
	}
	tables := s.r.k.Counts().Tables

	// Nothing changed: nothing is read again, nothing is planned.
	cfg := s.load(t)
	if n := s.loader.reads.Load(); n != 11 {
		t.Errorf("an unchanged reload read %d files", n-11)
	}
	if ops, err := s.r.engine.Reload(t.Context(), cfg); err != nil || len(ops) != 0 {
		t.Fatalf("unchanged reload: %v %v", ops, err)
	}

	// One weight in one file: that file alone is read, its services alone
	// are planned, and one operation reaches the kernel.
	s.write(t, "services.d/f13.yaml", strings.Replace(services("s", 30, 10, 5), "weight: 5}", "weight: 6}", 1))
	cfg = s.load(t)
	if n := s.loader.reads.Load(); n != 12 {
		t.Errorf("the reload read %d files, want 1", n-11)
	}
	if cfg.from == nil || len(cfg.from.changed) != 10 || cfg.from.changed[0] != 30 {
		t.Fatalf("delta = %+v, want the 10 services of f13 (from position 30)", cfg.from)
	}
	p := s.r.engine.quickPlanFor(cfg)
	if p == nil || len(p.replace) != 1 || p.replace[30].Service.Addr.String() != "10.9.0.31" {
		t.Fatalf("planned %+v, want service 30 alone", p)
	}
	ops, err := s.r.engine.Reload(t.Context(), cfg)
	if err != nil || len(ops) != 1 || ops[0].Kind != ipvs.EditDest || ops[0].Dest.Weight != 6 {
		t.Fatalf("reload made %v: %v", ops, err)
	}
	if !strings.Contains(s.r.k.String(), "-a -t 10.9.0.31:80 -r 10.8.0.1:80 -g -w 6\n") {
		t.Errorf("kernel:\n%s", s.r.k)
	}
	if s.r.k.Counts().Tables != tables {
		t.Errorf("the reload read the kernel's table")
	}

	// The same content written again (a new mtime, the same bytes): read,
	// found the same, nothing planned.
	s.write(t, "services.d/f13.yaml", strings.Replace(services("s", 30, 10, 5), "weight: 5}", "weight: 6}", 1))
	cfg = s.load(t)
	if cfg.from == nil || len(cfg.from.changed) != 0 {
		t.Errorf("an identical file counts as changed: %+v", cfg.from)
	}
}

func TestIncrementalReloadSameSizeAndTimes(t *testing.T) {
	s := newSiteRig(t, 3)
	p := filepath.Join(s.dir, "services.d/f11.yaml")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	// An edit of the same size with the modification time put back: the
	// change time still tells.
	s.write(t, "services.d/f11.yaml", strings.Replace(services("s", 10, 10, 5), "weight: 5}", "weight: 7}", 1))
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	ops, err := s.r.engine.Reload(t.Context(), s.load(t))
	if err != nil || len(ops) != 1 || ops[0].Dest.Weight != 7 {
		t.Fatalf("reload made %v: %v", ops, err)
	}
}

func TestIncrementalReloadFileRemoved(t *testing.T) {
	s := newSiteRig(t, 3)
	if err := os.Remove(filepath.Join(s.dir, "services.d/f11.yaml")); err != nil {
		t.Fatal(err)
	}
	cfg := s.load(t)
	if len(cfg.VirtualServices) != 20 {
		t.Fatalf("%d services, want 20", len(cfg.VirtualServices))
	}
	ops, err := s.r.engine.Reload(t.Context(), cfg)
	if err != nil || len(ops) != 30 {
		t.Fatalf("reload made %d changes, want 10 services and their 20 real servers removed: %v", len(ops), err)
	}
	k := s.r.k.String()
	if strings.Contains(k, "10.9.0.11:80") || strings.Contains(k, "10.9.0.20:80") || !strings.Contains(k, "10.9.0.10:80") || !strings.Contains(k, "10.9.0.21:80") {
		t.Errorf("kernel after removing f11:\n%s", k)
	}
	// Added back: its services come back.
	s.write(t, "services.d/f11.yaml", services("s", 10, 10, 5))
	if ops, err := s.r.engine.Reload(t.Context(), s.load(t)); err != nil || len(ops) != 30 {
		t.Fatalf("adding the file back made %d changes: %v", len(ops), err)
	}
}

func TestIncrementalReloadBadFileChangesNothing(t *testing.T) {
	s := newSiteRig(t, 3)
	before := s.r.k.String()
	good := s.load(t)
	// A syntax error in one file, a conflict in another.
	s.write(t, "services.d/f10.yaml", services("s", 0, 10, 5)+"- name: [\n")
	s.write(t, "services.d/f12.yaml", strings.Replace(services("s", 20, 10, 5), "name: s29", "name: s13", 1))
	_, _, err := s.loader.Load()
	f10, f12 := filepath.Join(s.dir, "services.d/f10.yaml"), filepath.Join(s.dir, "services.d/f12.yaml")
	f11 := filepath.Join(s.dir, "services.d/f11.yaml")
	for _, want := range []string{f10 + ":61:1: YAML syntax", f12 + ":55:3: [9].name: name \"s13\" is already used by " + f11 + ":19:3 ([3])"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error:\n%v\nwant it to contain %q", err, want)
		}
	}
	if s.r.k.String() != before {
		t.Error("the kernel changed")
	}
	// The loader kept what it had: fixing one file and not the other is
	// still refused; fixing both loads, planning only what changed.
	s.write(t, "services.d/f10.yaml", services("s", 0, 10, 5))
	if _, _, err := s.loader.Load(); err == nil || !strings.Contains(err.Error(), "name \"s13\" is already used") {
		t.Fatalf("half-fixed site: %v", err)
	}
	s.write(t, "services.d/f12.yaml", strings.Replace(services("s", 20, 10, 5), "weight: 5}", "weight: 9}", 1))
	cfg := s.load(t)
	if cfg.from == nil || !cfg.from.from(good) && !cfg.from.from(s.r.engine.Config()) {
		t.Fatalf("delta does not follow the configuration in force")
	}
	ops, err := s.r.engine.Reload(t.Context(), cfg)
	if err != nil || len(ops) != 1 || ops[0].Dest.Weight != 9 {
		t.Fatalf("reload made %v: %v", ops, err)
	}
}

// quickPlanFor returns the quick plan the engine would make for cfg (nil:
// a full one), changing nothing.
func (e *Engine) quickPlanFor(cfg *Config) *planned {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.fresh || e.table == nil || e.last == nil {
		return nil
	}
	return e.quickPlan(cfg)
}

func TestUntrustedStatIsReadAgain(t *testing.T) {
	s := newSite(t, "include: [services.d/*.yaml]\n")
	s.write(t, "services.d/a.yaml", services("a", 0, 2, 5))
	l := NewLoader(s.path)
	if _, _, err := l.Load(); err != nil {
		t.Fatal(err)
	}
	// Just written: its stat says nothing yet, it is read again (and found
	// the same).
	p := filepath.Join(s.dir, "services.d/a.yaml")
	if err := os.WriteFile(p, []byte(services("a", 0, 2, 5)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Load(); err != nil {
		t.Fatal(err)
	}
	// Both files changed (their change times) a moment ago: both are
	// read again, however often.
	n := l.reads.Load()
	cfg, _, err := l.Load()
	if err != nil || l.reads.Load() != n+2 {
		t.Fatalf("files changed a moment ago were not read again (%d reads): %v", l.reads.Load()-n, err)
	}
	if cfg.from == nil || len(cfg.from.changed) != 0 {
		t.Errorf("the same content counts as changed: %+v", cfg.from)
	}
}

// TestIncludedServiceInputsAndFullNATChecked: the keys of a service that
// other parts of the director read (health_check, full-NAT's
// local_addresses) are checked in an included file as in the main one,
// with the included file's position.
func TestIncludedServiceInputsAndFullNATChecked(t *testing.T) {
	s := newSite(t, "include: [services.d/*.yaml]\n")
	s.write(t, "services.d/a.yaml", "- name: fn\n  vip: 10.6.0.1\n  port: 80\n  forwarding: fullnat\n  real_servers:\n    - {address: 10.8.0.1}\n"+
		"- name: hc\n  vip: 10.6.0.2\n  port: 80\n  health_check: {type: tcp, interval: 1s, timeout: 5s}\n  real_servers:\n    - {address: 10.8.0.1}\n")
	_, _, err := LoadConfig(s.path)
	a := filepath.Join(s.dir, "services.d/a.yaml")
	for _, want := range []string{
		a + ":4:",
		"full-NAT needs local_addresses",
		a + ":10:",
		"[1].health_check.timeout",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
		}
	}
}
