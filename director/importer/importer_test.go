package importer

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvsadm"
)

// The keys the importer writes that director.yaml does not read yet
// (health checking): the tests check them on their own and take them out
// before the director's strict decoder reads the rest.
var newKeys = []string{"health_check", "sorry_server", "quorum"}

// split decodes an imported director.yaml: it returns the document
// without the new keys, and those keys by service name ("NAME" for the
// service, "NAME/ADDRESS" for a real server).
func split(t *testing.T, out []byte) ([]byte, map[string]map[string]any) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, out)
	}
	found := map[string]map[string]any{}
	take := func(m *yaml.Node, key string) {
		kept := m.Content[:0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			isNew := false
			for _, n := range newKeys {
				isNew = isNew || k.Value == n
			}
			if !isNew {
				kept = append(kept, k, v)
				continue
			}
			var x any
			if err := v.Decode(&x); err != nil {
				t.Fatalf("%s.%s: %v", key, k.Value, err)
			}
			if found[key] == nil {
				found[key] = map[string]any{}
			}
			found[key][k.Value] = x
		}
		m.Content = kept
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "virtual_services" {
			continue
		}
		for _, vs := range root.Content[i+1].Content {
			name := field(vs, "name")
			take(vs, name)
			for j := 0; j+1 < len(vs.Content); j += 2 {
				if vs.Content[j].Value == "real_servers" {
					for _, rs := range vs.Content[j+1].Content {
						take(rs, name+"/"+field(rs, "address"))
					}
				}
			}
		}
	}
	rest, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return rest, found
}

func field(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1].Value
		}
	}
	return ""
}

// table loads an imported director.yaml (without the new keys) as the
// director does and returns the table it programs, as ipvsadm -Sn.
func table(t *testing.T, name string, out []byte) string {
	t.Helper()
	rest, _ := split(t, out)
	cfg, _, err := director.ParseConfig(name+".yaml", rest)
	if err != nil {
		t.Fatalf("output of %s does not load as a director config: %v\n%s", name, err, out)
	}
	plan, err := director.Desired(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return save(t, plan.Table)
}

func save(t *testing.T, tab *ipvs.Table) string {
	t.Helper()
	var b bytes.Buffer
	if err := ipvsadm.WriteSave(&b, tab); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// want reads FILE.want through ipvsadm -R's rules, so that both sides are
// in ipvsadm's order.
func want(t *testing.T, file string) *ipvs.Table {
	t.Helper()
	f, err := os.Open("testdata/" + file + ".want")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := ipvsadm.ParseSave(f, file+".want")
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

type sample struct {
	file, importer, options, original, note string
}

func samples(t *testing.T) []sample {
	t.Helper()
	b, err := os.ReadFile("testdata/SAMPLES")
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		f := strings.Split(l, " | ")
		if len(f) != 5 {
			t.Fatalf("SAMPLES: bad line %q", l)
		}
		out = append(out, sample{f[0], f[1], f[2], f[3], f[4]})
	}
	return out
}

func importSample(t *testing.T, s sample) *Result {
	t.Helper()
	f, err := os.Open("testdata/" + s.file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var opts Options
	if id, ok := strings.CutPrefix(s.options, "--config-id="); ok {
		opts.ConfigID = id
	}
	conv := FromIpvsadm
	if s.importer == "keepalived" {
		conv = FromKeepalived
	}
	res, err := conv(f, "testdata/"+s.file, opts)
	if err != nil {
		t.Fatalf("import %s: %v", s.file, err)
	}
	return res
}

// TestSamplesGiveTheirTable: every importer sample, imported and loaded
// by the director, programs the table its FILE.want gives (worked out
// from keepalived's and ipvsadm's behaviour, see SAMPLES).
func TestSamplesGiveTheirTable(t *testing.T) {
	list := samples(t)
	if len(list) < 10 {
		t.Fatalf("only %d samples", len(list))
	}
	for _, s := range list {
		t.Run(s.file, func(t *testing.T) {
			res := importSample(t, s)
			w := want(t, s.file)
			if got, exp := table(t, s.file, res.YAML), save(t, w); got != exp {
				t.Errorf("table\n--- got\n%s--- want\n%s--- yaml\n%s", got, exp, res.YAML)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	res := importSample(t, sample{file: "quirks.keepalived.conf", importer: "keepalived"})
	// 3 services, 5 real servers; kept as comments: "dev eth0", lb_kind
	// dr, persistence_timeout 0, two NAT defaults, LB_KIND, lvs_method
	// Dr, the port-0 persistence, lb_kind in a real server, lvs_sched RR,
	// the UDP default. The 8443 port kept for NAT is no comment.
	if got := res.Summary(); got != "3 services, 5 real servers, 11 lines kept as comments" {
		t.Errorf("summary %q\n%s", got, res.YAML)
	}
}

// TestKeepalivedAgrees runs keepalived -t on every keepalived sample: each
// line it complains about must be one the import says keepalived ignores
// or changes, and each change it announces must be in the output.
func TestKeepalivedAgrees(t *testing.T) {
	bin := "/usr/sbin/keepalived"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("keepalived is needed (scripts/install-deps.sh installs it): %v", err)
		}
		t.Skip("keepalived not installed")
	}
	announced := map[string]string{
		"no protocol set - defaulting to UDP":            "defaults to UDP",
		"no forwarding method set, setting default NAT":  "defaults to NAT",
		"zero port only valid for persistent services":   "makes a port-0 service persistent",
		"ports don't match - resetting":                  "reset to the service port",
		"has port specified - clearing":                  "cleared",
		"one packet scheduling requires UDP - resetting": "resets one-packet scheduling",
		"no scheduler set, setting default 'wlc'":        "scheduler: wlc",
	}
	for _, s := range samples(t) {
		if s.importer != "keepalived" {
			continue
		}
		t.Run(s.file, func(t *testing.T) {
			res := importSample(t, s)
			out := string(res.YAML)
			lines := kaComplaints(t, bin, s)
			src, err := os.ReadFile("testdata/" + s.file)
			if err != nil {
				t.Fatal(err)
			}
			srcLines := strings.Split(string(src), "\n")
			for _, l := range lines {
				if l.line > 0 {
					if l.file != s.file {
						continue
					}
					stmt := kaStatement(srcLines[l.line-1])
					if !strings.Contains(out, "# "+stmt) && !strings.Contains(out, stmt+":") {
						t.Errorf("keepalived says %q of line %d (%s); the import does not mention it:\n%s", l.msg, l.line, stmt, out)
					}
					continue
				}
				for k, v := range announced {
					if strings.Contains(l.msg, k) && !strings.Contains(out, v) {
						t.Errorf("keepalived says %q; the import lacks %q:\n%s", l.msg, v, out)
					}
				}
			}
		})
	}
}

type kaComplaint struct {
	file string
	line int
	msg  string
}

// kaComplaints runs keepalived -t on a sample (with its -i) and parses
// what it reports: "(FILE: Line N) message" or a message without a line.
func kaComplaints(t *testing.T, bin string, s sample) []kaComplaint {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-t", "-l", "-D", "-n", "-f", dir + "/testdata/" + s.file}
	if id, ok := strings.CutPrefix(s.options, "--config-id="); ok {
		args = append(args, "-i", id)
	}
	out, _ := runPeer(t, bin, args...) // keepalived -t exits non-zero when it complains
	var list []kaComplaint
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		c := kaComplaint{msg: l}
		if strings.HasPrefix(l, "(") {
			head, msg, _ := strings.Cut(l[1:], ") ")
			file, line, ok := strings.Cut(head, ": Line ")
			if ok {
				fmt.Sscan(line, &c.line)
				c.file = strings.TrimPrefix(file, dir+"/testdata/")
				c.msg = msg
			}
		}
		list = append(list, c)
	}
	return list
}

// kaStatement is the statement of a source line as the import quotes it.
func kaStatement(l string) string {
	if i := strings.IndexAny(l, "#!"); i >= 0 {
		l = l[:i]
	}
	l = strings.TrimSuffix(strings.TrimSpace(l), "{")
	return strings.Join(strings.Fields(l), " ")
}

func TestHealthCheckMapping(t *testing.T) {
	res := importSample(t, sample{file: "checks.keepalived.conf", importer: "keepalived"})
	_, got := split(t, res.YAML)
	status2xx := []any{}
	for s := 200; s <= 299; s++ {
		status2xx = append(status2xx, s)
	}
	for _, tc := range []struct {
		where string
		check map[string]any
	}{
		// Same check on both servers: one health_check on the service;
		// retry and inhibit_on_failure come from the virtual server,
		// virtualhost is the Host header; the second url is a comment.
		{"tcp-192.0.2.50-80", map[string]any{"type": "http", "interval": "5s", "timeout": "2s", "rise": 1, "fall": 3,
			"on_failure": "quiesce", "method": "GET", "path": "/healthz", "host": "www.example.com",
			"expect_status": []any{200, 204}}},
		// Different checks: one per server. SNI from virtualhost with
		// enable_sni; nb_get_retry 3 is retry 3; keepalived's default
		// status is any 2xx; no certificate verification.
		{"tcp-192.0.2.50-443/10.4.0.1", map[string]any{"type": "https", "interval": "60s", "timeout": "5s", "rise": 1, "fall": 4,
			"on_failure": "remove", "method": "GET", "path": "/healthz", "host": "secure.example.com",
			"expect_status": []any{200, 201, 202}, "tls_server_name": "secure.example.com", "tls_verify": false}},
		{"tcp-192.0.2.50-443/10.4.0.2", map[string]any{"type": "https", "interval": "60s", "timeout": "5s", "rise": 1, "fall": 2,
			"on_failure": "remove", "method": "GET", "path": "/healthz", "expect_status": status2xx, "tls_verify": false}},
		// DNS_CHECK retries 3 times by default.
		{"udp-192.0.2.53-53/10.4.0.11", map[string]any{"type": "dns", "interval": "60s", "timeout": "1s", "rise": 1, "fall": 4,
			"on_failure": "remove", "query": "example.com", "qtype": "A", "expect_rcode": "NOERROR"}},
		{"udp-192.0.2.53-53/10.4.0.12", map[string]any{"type": "udp", "interval": "60s", "timeout": "5s", "rise": 1, "fall": 2,
			"on_failure": "remove", "payload": "0a0b0c", "expect": "0d0e", "port": 5353}},
		{"udp-192.0.2.53-53/10.4.0.13", map[string]any{"type": "icmp", "interval": "60s", "timeout": "5s", "rise": 1, "fall": 2,
			"on_failure": "remove"}},
		// MISC_CHECK: the quoted misc_path is command and arguments;
		// retry defaults to 0.
		{"tcp-192.0.2.60-25/10.4.0.21", map[string]any{"type": "exec", "interval": "60s", "timeout": "4s", "rise": 1, "fall": 1,
			"on_failure": "remove", "command": "/usr/local/bin/check_smtp", "args": []any{"--host", "10.4.0.21", "--port", "25"}}},
		// SMTP_CHECK is not mapped: the next checker is, and keepalived's
		// wish for both is a comment.
		{"tcp-192.0.2.60-25/10.4.0.22", nil},
	} {
		var c any
		if got[tc.where] != nil {
			c = got[tc.where]["health_check"]
		}
		if tc.check == nil {
			continue
		}
		if fmt.Sprint(c) != fmt.Sprint(tc.check) {
			t.Errorf("%s health_check\n got %v\nwant %v", tc.where, c, tc.check)
		}
	}
	for _, c := range []string{
		"# url {path /ready} (not mapped: keepalived fetches every url in turn; the director checks the first)",
		"# digest 9b3a0c85a887a256d6939da88aabd8cd (not mapped",
		"# misc_dynamic (not mapped",
		"# SMTP_CHECK {connect_timeout 5} (not mapped: the director has no such check)",
		"# rise 1: keepalived has no rise for real-server checks",
		"# fall 3: keepalived retries 2 times, 3s apart",
	} {
		if !strings.Contains(string(res.YAML), c) {
			t.Errorf("output lacks %q\n%s", c, res.YAML)
		}
	}
	if c := got["tcp-192.0.2.60-25/10.4.0.22"]["health_check"]; fmt.Sprint(c) != fmt.Sprint(map[string]any{
		"type": "tcp", "interval": "60s", "timeout": "5s", "rise": 1, "fall": 2, "on_failure": "remove", "address": "10.4.0.122"}) {
		t.Errorf("second checker: %v", c)
	}
}

func TestSorryServerAndQuorum(t *testing.T) {
	res := importSample(t, sample{file: "groups.keepalived.conf", importer: "keepalived"})
	_, got := split(t, res.YAML)
	web := got["tcp-192.0.2.10-80"]
	if fmt.Sprint(web["sorry_server"]) != fmt.Sprint(map[string]any{"address": "192.0.2.250", "port": 80, "forwarding": "dr"}) {
		t.Errorf("sorry_server %v", web["sorry_server"])
	}
	// quorum 2 with every server at weight 1: two servers up.
	if fmt.Sprint(web["quorum"]) != "map[min_up:2]" {
		t.Errorf("quorum %v", web["quorum"])
	}
	for _, c := range []string{
		"# alpha: keepalived starts these servers as down until their first check succeeds",
		"# omega (not mapped",
		"# quorum_up /usr/local/bin/lb-notify up (not mapped",
		"# from virtual_server group WEB (line 25)",
	} {
		if !strings.Contains(string(res.YAML), c) {
			t.Errorf("output lacks %q\n%s", c, res.YAML)
		}
	}
	// Unequal weights: keepalived's weight quorum has no server count.
	in := "virtual_server 10.0.0.1 80 {\n protocol TCP\n quorum 3\n real_server 10.0.0.2 80 { weight 1 }\n real_server 10.0.0.3 80 { weight 2 }\n}\n"
	r, err := FromKeepalived(strings.NewReader(in), "q.conf", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, g := split(t, r.YAML); g["tcp-10.0.0.1-80"]["quorum"] != nil || !strings.Contains(string(r.YAML), "# quorum 3 (not mapped: keepalived counts the weight") {
		t.Errorf("unequal weights:\n%s", r.YAML)
	}
}

func TestKeepalivedErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"virtual_server 10.0.0.1 80 {\n  lvs_sched rr\n", "k.conf:1:28: '{' of \"virtual_server\" is never closed"},
		{"virtual_server 10.0.0.1 80 {\n}\n}\n", "k.conf:3:1: '}' without a matching '{'"},
		{"{\n}", "k.conf:1:1: '{' without a statement to open"},
		{"virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    weight 70000\n  }\n}\n", "k.conf:3:12: weight: want 0 to 65535, got \"70000\""},
		{"virtual_server 10.0.0.1 http {\n}\n", "k.conf:1:25: virtual_server: want a port number, got \"http\""},
		{"virtual_server group WEB {\n}\n", "k.conf:1:22: virtual_server group \"WEB\": no virtual_server_group of that name"},
		{"virtual_server 10.0.0.1 80 {\n  notification_email \"ops@x\n}\n", "k.conf:2:22: unterminated quoted string"},
		{"virtual_server_group G {\n 10.0.0.1-300 80\n}\nvirtual_server group G {\n}\n", "k.conf:2:2: virtual_server_group G: bad range end"},
		{"virtual_server_group G {\n 10.0.0.5-5 80\n}\nvirtual_server group G {\n}\n", "k.conf:2:2: virtual_server_group G: range \"10.0.0.5-5\" does not end after it starts"},
		{"virtual_server 10.0.0.1 80 {\n  persistence_timeout 99999999\n}\n", "k.conf:2:23: persistence_timeout: want seconds"},
		// A macro's value is reported at the $ that brought it in.
		{"$P=x80\nvirtual_server 10.0.0.1 $P {\n}\n", "k.conf:2:25: virtual_server: want a port number, got \"x80\""},
		// @ID lines that matter need the director's id.
		{"virtual_server 10.0.0.1 80 {\n  @low weight 2\n  real_server 10.0.0.2 80 {\n  }\n}\n", "k.conf:2:8: @low applies only when keepalived runs with that config id"},
		{"~SEQ(i,1,3) virtual_server 10.0.0.$i 80 {\n}\n", "k.conf:1:1: ~SEQ is not supported"},
		{"include missing/file.conf\n", "k.conf:1:1: include missing/file.conf: no such file"},
		// All real servers dropped by the import (not by keepalived).
	} {
		_, err := FromKeepalived(strings.NewReader(tc.in), "k.conf", Options{FS: os.DirFS("testdata")})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

// TestNoBreakSpaces: a block indented with U+00A0 (pasted from a web
// page) is refused at the first one; keepalived -t drops those lines and
// then the service (see the sample's header).
func TestNoBreakSpaces(t *testing.T) {
	f, err := os.Open("testdata/errors/nbsp.keepalived.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = FromKeepalived(f, "nbsp.keepalived.conf", Options{})
	if err == nil || !strings.Contains(err.Error(), "nbsp.keepalived.conf:9:1: no-break space (U+00A0) in the indentation: keepalived does not take it for a blank") {
		t.Errorf("got %v", err)
	}
	// Inside quotes it is text, as for keepalived.
	in := "global_defs {\n  notification_email_from \"ops\u00a0team\"\n}\n"
	if _, err := FromKeepalived(strings.NewReader(in), "q.conf", Options{}); err != nil {
		t.Errorf("quoted no-break space: %v", err)
	}
}

func TestKeepalivedSyntaxVariants(t *testing.T) {
	// One-line blocks, '{' on its own line, comments with ! and # after
	// words, quoted strings holding comment characters, escaped \#.
	in := `virtual_server 10.0.0.1 80 { lvs_sched rr ! inline comment
  lvs_method DR
  protocol TCP
  real_server 10.0.0.11 80 { weight 2 }
  real_server 10.0.0.12 80
  {
    weight 3 # trailing
    MISC_CHECK { misc_path "/bin/check --opt=#1 !x" }
  }
  unknown_thing \#1
}
`
	res, err := FromKeepalived(strings.NewReader(in), "v.conf", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := table(t, "v", res.YAML); got != "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 2\n-a -t 10.0.0.1:80 -r 10.0.0.12:80 -g -w 3\n" {
		t.Errorf("got %s\n%s", got, res.YAML)
	}
	_, checks := split(t, res.YAML)
	if c := fmt.Sprint(checks["tcp-10.0.0.1-80/10.0.0.12"]["health_check"]); !strings.Contains(c, "command:/bin/check") || !strings.Contains(c, "args:[--opt=#1 !x]") {
		t.Errorf("quoted path lost: %s\n%s", c, res.YAML)
	}
	if !strings.Contains(string(res.YAML), "# unknown_thing #1: keepalived ignores this line (unknown keyword)") {
		t.Errorf("unknown keyword:\n%s", res.YAML)
	}
}

func TestConfigIDs(t *testing.T) {
	// The same file as the high director reads it.
	res := importSample(t, sample{file: "macros.keepalived.conf", importer: "keepalived", options: "--config-id=high"})
	got := table(t, "macros-high", res.YAML)
	if !strings.Contains(got, "-a -t 203.0.113.80:80 -r 10.3.0.12:80 -g -w 1\n") {
		t.Errorf("high director's weights:\n%s", got)
	}
	if !strings.Contains(string(res.YAML), "@low weight 2 (for another config id than \"high\")") {
		t.Errorf("dropped @low line not said:\n%s", res.YAML)
	}
	// Without an id, the @ lines of the virtual server are an error.
	_, err := FromKeepalived(strings.NewReader("virtual_server 10.0.0.1 80 {\n  @low weight 2\n}\n"), "m.conf", Options{})
	if err == nil || !strings.Contains(err.Error(), "m.conf:2:8: @low applies only") {
		t.Errorf("got %v", err)
	}
	// Lines that do not matter for the table stay comments.
	res2, err := FromKeepalived(strings.NewReader("global_defs {\n  @low router_id lb-low\n}\n"), "v.conf", Options{})
	if err != nil || !strings.Contains(string(res2.YAML), "@low router_id lb-low") {
		t.Errorf("got %v\n%s", err, res2.YAML)
	}
}

func TestShellScripts(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		table    string
		notes    []string
	}{
		{"stop branch not applied", "#!/bin/sh\nipvsadm -A -t 10.0.0.1:80\ncase \"$1\" in\nstart) ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2 ;;\nstop) ipvsadm -C ;;\nesac\n",
			"-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 1\n",
			[]string{"line 5: stop) (branch not taken: the script is imported as run with \"start\")"}},
		{"if on $1 and functions with arguments", "add() { ipvsadm -a -t $1:80 -r $2 -w ${3:-1}; }\nif [ \"$1\" = \"start\" ]; then\n ipvsadm -At 10.0.0.1:80 -s rr\n add 10.0.0.1 10.0.0.2 5\n add 10.0.0.1 10.0.0.3\nelse\n ipvsadm -C\nfi\n",
			"-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 5\n-a -t 10.0.0.1:80 -r 10.0.0.3:80 -g -w 1\n", nil},
		{"sudo, env and a command in a variable", "ipv=\"sudo -E /usr/sbin/ipvsadm\"\n$ipv -A -u 10.0.0.1:53 -s rr\nenv LANG=C ipvsadm -a -u 10.0.0.1:53 -r 10.0.0.2:53 -m\n",
			"-A -u 10.0.0.1:53 -s rr\n-a -u 10.0.0.1:53 -r 10.0.0.2:53 -m -w 1\n", nil},
		{"here-document to ipvsadm -R", "ipvsadm -C\nVIP=10.0.0.9\nipvsadm -R <<EOF\n-A -t $VIP:443 -s sh\n-a -t $VIP:443 -r 10.0.0.2:443 -g -w 2\nEOF\n",
			"-A -t 10.0.0.9:443 -s sh\n-a -t 10.0.0.9:443 -r 10.0.0.2:443 -g -w 2\n", nil},
		{"guards and && chains", "[ -x /sbin/ipvsadm ] || exit 1\n[ -d /etc/lvs ] || exit 0\nmodprobe ip_vs && ipvsadm -A -f 3 -s rr\nipvsadm -A -f 4 || echo failed\n",
			"-A -f 3 -s rr\n-A -f 4 -s wlc\n",
			[]string{"line 2: [ -d /etc/lvs ] || exit 0 (assumed not to stop the script (it depends on test -d /etc/lvs depends on the director's files or terminal))",
				"line 3: modprobe ip_vs (not an ipvsadm command)"}},
		{"exit ends the script", "ipvsadm -A -f 3\nexit 0\nipvsadm -A -f 4\n", "-A -f 3 -s wlc\n", nil},
		{"for over positional parameters and set --", "set -- 10.0.0.2 10.0.0.3\nipvsadm -A -t 10.0.0.1:80\nfor r; do ipvsadm -a -t 10.0.0.1:80 -r $r; done\n",
			"-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 1\n-a -t 10.0.0.1:80 -r 10.0.0.3:80 -g -w 1\n", nil},
		{"subshell variables stay inside", "V=10.0.0.1\n(V=10.0.0.99)\nipvsadm -A -t $V:80\n", "-A -t 10.0.0.1:80 -s wlc\n", nil},
		{"unknown branch without ipvsadm", "if grep -q lvs /proc/modules; then echo loaded; fi\nipvsadm -A -f 9\n", "-A -f 9 -s wlc\n",
			[]string{"line 1: if grep -q lvs /proc/modules; then echo loaded; fi (skipped: depends on the exit status of grep -q lvs /proc/modules; no ipvsadm command in it)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := FromIpvsadm(strings.NewReader(tc.in), "s.sh", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := table(t, "s", res.YAML); got != tc.table {
				t.Errorf("table\n--- got\n%s--- want\n%s--- yaml\n%s", got, tc.table, res.YAML)
			}
			for _, n := range tc.notes {
				if !strings.Contains(string(res.YAML), "#   "+n) {
					t.Errorf("output lacks %q\n%s", n, res.YAML)
				}
			}
		})
	}
}

func TestShellErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ipvsadm -A -t $VIP:80\n", "s.sh:1:15: $VIP is not set by the script (it would come from the environment)"},
		{". /etc/default/lvs\nipvsadm -A -t ${VIP:-10.0.0.1}:80\n", "s.sh:2:15: $VIP is not set by the script itself: it may come from /etc/default/lvs (line 1)"},
		{"ipvsadm -A -t `hostname -i`:80\n", "s.sh:1:15: the output of command `hostname -i` cannot be known without running the script"},
		{"IPVSADM=$(which ipvsadm)\n$IPVSADM -C\n", "s.sh:2:1: cannot tell which command this runs: $IPVSADM cannot be known without running the script: assigned at line 1 from the output of command $(which ipvsadm)"},
		{"while read l; do ipvsadm -A -t $l; done < rules\n", "s.sh:1:1: cannot know whether while read l; do ipvsadm -A -t $l; done < rules changes the table"},
		{"case $(hostname) in lb1) ipvsadm -A -f 1 ;; esac\n", "s.sh:1:6: cannot know which branch of this case runs"},
		{"ipvsadm -R < /etc/ipvsadm.rules\n", "s.sh:1:14: ipvsadm -R reads its rules from /etc/ipvsadm.rules, which is not part of this script"},
		{"ipvsadm -A -t 10.0.0.1:80\nipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2 -w x\n", "s.sh:2:42: illegal weight \"x\""},
		{"W=70000\nipvsadm -A -t 10.0.0.1:80\nipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2 -w$W\n", "s.sh:3:39: illegal weight \"70000\""},
		{"ipvsadm -A -t 10.0.0.1:80 'unterminated\n", "s.sh:1:27: shell syntax: reached EOF without closing quote `'`"},
		{"ipvsadm -A -t 10.0.0.1:nosuchport\n", "s.sh:1:15: illegal virtual server address[:port] \"10.0.0.1:nosuchport\": unknown port name \"nosuchport\" for tcp"},
		{"f() { f; }\nf\n", "functions nest deeper than 64 calls"},
	} {
		_, err := FromIpvsadm(strings.NewReader(tc.in), "s.sh", Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
	for file, want := range map[string]string{
		"errors/hostname.sh": "errors/hostname.sh:6:15: $VIP cannot be known without running the script",
		"errors/branch.sh":   "errors/branch.sh:5:1: cannot know whether if [ -f /etc/lvs/backup ]; then ... changes the table: it depends on test -f /etc/lvs/backup",
	} {
		f, err := os.Open("testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		_, err = FromIpvsadm(f, file, Options{})
		f.Close()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %s", file, err, want)
		}
	}
}

// TestPortNamesPerProtocol: ipvsadm looks a port name up for the
// service's protocol (getservbyname(name, "udp") for -u).
func TestPortNamesPerProtocol(t *testing.T) {
	svc, err := ipvsadm.ReadServices(strings.NewReader("# test\nsyslog 514/udp\nshell 514/tcp cmd\nhttp 80/tcp www\n"))
	if err != nil {
		t.Fatal(err)
	}
	in := "-A -u 10.0.0.1:syslog\n-A -t 10.0.0.1:cmd\n-A -t 10.0.0.1:www\n"
	res, err := FromIpvsadm(strings.NewReader(in), "n.save", Options{Services: svc})
	if err != nil {
		t.Fatal(err)
	}
	if got := table(t, "n", res.YAML); got != "-A -t 10.0.0.1:80 -s wlc\n-A -t 10.0.0.1:514 -s wlc\n-A -u 10.0.0.1:514 -s wlc\n" {
		t.Errorf("got %s", got)
	}
	_, err = FromIpvsadm(strings.NewReader("-A -t 10.0.0.1:syslog\n"), "n.save", Options{Services: svc})
	if err == nil || !strings.Contains(err.Error(), "n.save:1:7: illegal virtual server address[:port] \"10.0.0.1:syslog\": unknown port name \"syslog\" for tcp") {
		t.Errorf("got %v", err)
	}
}

// TestMixedFamilyImported: tun real servers of the other address family
// are imported (the director programs them); the ipvsadm parser itself
// refuses other methods as ipvsadm does.
func TestMixedFamilyImported(t *testing.T) {
	in := "-A -t [2001:db8::1]:80\n-a -t [2001:db8::1]:80 -r 10.0.0.2:80 -i --tun-type gre\n"
	res, err := FromIpvsadm(strings.NewReader(in), "e.save", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := table(t, "e", res.YAML); got != "-A -t [2001:db8::1]:80 -s wlc\n-a -t [2001:db8::1]:80 -r 10.0.0.2:80 -i -w 1 --tun-type gre --tun-nocsum\n" {
		t.Errorf("got %s\n%s", got, res.YAML)
	}
	_, err = FromIpvsadm(strings.NewReader("-A -t [2001:db8::1]:80\n-a -t [2001:db8::1]:80 -r 10.0.0.2:80 -g\n"), "e.save", Options{})
	if err == nil || !strings.Contains(err.Error(), "e.save:2:24: different address family is allowed only for tunneling servers") {
		t.Errorf("got %v", err)
	}
}

func TestDuplicateNames(t *testing.T) {
	in := "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n }\n}\nvirtual_server 10.0.0.1 80 {\n protocol UDP\n real_server 10.0.0.2 80 {\n }\n}\n"
	res, err := FromKeepalived(strings.NewReader(in), "d.conf", Options{})
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := split(t, res.YAML)
	cfg, _, err := director.ParseConfig("d.yaml", rest)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.YAML)
	}
	if cfg.VirtualServices[0].Name != "tcp-10.0.0.1-80" || cfg.VirtualServices[1].Name != "udp-10.0.0.1-80" {
		t.Errorf("names %s %s", cfg.VirtualServices[0].Name, cfg.VirtualServices[1].Name)
	}
	vs := []vsOut{{name: "", protocol: "tcp", port: 80, vip: netip.MustParseAddr("10.0.0.1")}, {name: "", protocol: "tcp", port: 80, vip: netip.MustParseAddr("10.0.0.1")}}
	uniqueNames(vs)
	if vs[0].name == vs[1].name || vs[1].name != vs[0].name+"-2" {
		t.Errorf("names not made unique: %q %q", vs[0].name, vs[1].name)
	}
}

func TestEmptyInput(t *testing.T) {
	for _, f := range []func() (*Result, error){
		func() (*Result, error) { return FromIpvsadm(strings.NewReader(""), "empty", Options{}) },
		func() (*Result, error) { return FromKeepalived(strings.NewReader("! nothing\n"), "empty", Options{}) },
	} {
		res, err := f()
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := director.ParseConfig("e.yaml", res.YAML)
		if err != nil || len(cfg.VirtualServices) != 0 || res.Summary() != "0 services, 0 real servers, 0 lines kept as comments" {
			t.Errorf("%v %v %s\n%s", cfg, err, res.Summary(), res.YAML)
		}
	}
}

// decodes reports whether an import decodes as YAML the director's
// strict decoder reads once the new keys are out; validation may still
// object (e.g. an unknown scheduler name).
func decodes(t *testing.T, out []byte) {
	rest, _ := split(t, out)
	_, _, err := director.ParseConfig("f.yaml", rest)
	for _, structural := range []string{"YAML syntax", "want a single value", "want a list", "want a mapping",
		"want true or false", "want a whole number", "want a number", "unknown key"} {
		if err != nil && strings.Contains(err.Error(), structural) {
			t.Fatalf("output does not decode: %v\n%s", err, out)
		}
	}
}

func FuzzFromKeepalived(f *testing.F) {
	for _, s := range []string{"dr-web.keepalived.conf", "nat-udp-fwmark.keepalived.conf", "ipv6-tun.keepalived.conf",
		"quirks.keepalived.conf", "groups.keepalived.conf", "checks.keepalived.conf"} {
		b, err := os.ReadFile("testdata/" + s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, in string) {
		res, err := FromKeepalived(strings.NewReader(in), "f.conf", Options{FS: os.DirFS("testdata/conf.d")})
		if err != nil {
			if !strings.Contains(err.Error(), "f.conf:") && !strings.Contains(err.Error(), ".inc:") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		decodes(t, res.YAML)
	})
}

func FuzzFromIpvsadm(f *testing.F) {
	for _, s := range []string{"lvs_dr.sh", "init-lvs.sh", "lvs.sh", "site.save"} {
		b, err := os.ReadFile("testdata/" + s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	svc, _ := ipvsadm.ReadServices(strings.NewReader("http 80/tcp\nhttps 443/tcp\n"))
	f.Fuzz(func(t *testing.T, in string) {
		res, err := FromIpvsadm(strings.NewReader(in), "f.sh", Options{Services: svc})
		if err != nil {
			if !strings.Contains(err.Error(), "f.sh:") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		decodes(t, res.YAML)
	})
}

// runPeer runs a peer tool with a bounded wait and returns what it
// printed on both outputs.
func runPeer(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: %v", bin, args, ctx.Err())
	}
	return string(out), err
}

// TestRunawayInputs: inputs that grow without end are refused quickly.
func TestRunawayInputs(t *testing.T) {
	double := "x=a\n" + strings.Repeat("x=$x$x$x$x$x$x$x$x\n", 9) + "ipvsadm -A -t $x:80\n"
	for _, tc := range []struct{ in, want string }{
		{double, "s.sh:11:15: $x cannot be known without running the script: its value at line 7 is longer than 65536 bytes"},
		{"f() { f; f; }\nf\n", "functions nest deeper than 64 calls"},
		{"while :; do ipvsadm -A -f 1; done\n", "s.sh:1:1: cannot know whether"},
	} {
		start := time.Now()
		_, err := FromIpvsadm(strings.NewReader(tc.in), "s.sh", Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || time.Since(start) > 5*time.Second {
			t.Errorf("%.40q: %v after %v, want %s", tc.in, err, time.Since(start), tc.want)
		}
	}
	_, err := FromKeepalived(strings.NewReader("$A=$A $A\nvirtual_server $A 80 {\n}\n"), "k.conf", Options{})
	if err == nil || !strings.Contains(err.Error(), "k.conf:2:1: macro expansion does not end") {
		t.Errorf("self-referencing macro: %v", err)
	}
}

// TestPersistenceOrder: persistence_granularity makes a service
// persistent (360s) in keepalived's pgr_handler; a later
// persistence_timeout 0 is rejected and leaves that.
func TestPersistenceOrder(t *testing.T) {
	in := "virtual_server 10.0.0.1 80 {\n protocol TCP\n persistence_granularity 255.255.255.0\n persistence_timeout 0\n real_server 10.0.0.2 80 {\n }\n}\n"
	res, err := FromKeepalived(strings.NewReader(in), "p.conf", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := table(t, "p", res.YAML); got != "-A -t 10.0.0.1:80 -s wlc -p 360 -M 255.255.255.0\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1\n" {
		t.Errorf("got %s\n%s", got, res.YAML)
	}
}
