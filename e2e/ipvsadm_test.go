//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/lab/topo"
)

// variedRules builds a table that exercises every part of ipvsadm's
// layouts: TCP, UDP and SCTP services, IPv4 and IPv6, firewall marks of
// both families, persistence with netmasks, sh/mh scheduler flags,
// one-packet scheduling, DR, NAT and the three tunnel types, weight 0,
// thresholds, and VIPs more than 2^31 apart so that ipvsadm's sorting
// quirk shows (172.16/12 and 192.168/16 list before 10/8).
var variedRules = []string{
	"-A -t 10.0.0.1:80 -s wlc",
	"-a -t 10.0.0.1:80 -r 10.0.1.12:80 -g -w 1",
	"-a -t 10.0.0.1:80 -r 10.0.1.11:80 -g -w 100",
	"-A -t 10.0.0.1:443 -s sh -p 360 -M 255.255.255.0 -b sh-fallback,sh-port",
	"-a -t 10.0.0.1:443 -r 10.0.1.11:443 -g",
	"-A -u 10.0.0.2:53 -s rr -o",
	"-a -u 10.0.0.2:53 -r 10.0.2.11:5353 -m -w 5",
	"-a -u 10.0.0.2:53 -r 10.0.2.12:5353 -m -w 0 -x 100 -y 50",
	"-A -f 10 -s wrr -p 600",
	"-a -f 10 -r 10.0.1.13:0 -i -w 2",
	"-a -f 10 -r 10.0.1.14:0 -i -w 3 --tun-type gue --tun-port 6080 --tun-csum",
	"-a -f 10 -r 10.0.1.15:0 -i -w 1 --tun-type gre",
	"-A -t [2001:db8::1]:80 -s mh -b mh-port",
	"-a -t [2001:db8::1]:80 -r [2001:db8::11]:80 -g",
	"-a -t [2001:db8::1]:80 -r [2001:db8:0:1::1]:80 -g -w 9",
	"-A -f 20 -6 -s lc -p 60 -M 64",
	"-a -f 20 -6 -r [2001:db8::12]:0 -g -w 0",
	"-A -t 192.168.10.5:8080 -s wlc",
	"-a -t 192.168.10.5:8080 -r 192.168.10.21:8080 -m",
	"-A -t 172.16.0.9:25 -s rr",
	"-a -t 172.16.0.9:25 -r 172.16.1.1:25 -m",
	"-a -t 172.16.0.9:25 -r 10.9.9.9:2525 -m -w 4",
	"-A --sctp-service 10.0.0.3:3868 -s rr",
	"-a --sctp-service 10.0.0.3:3868 -r 10.0.1.11:3868 -g",
	"-A -t 10.0.0.4:0 -s wlc -p 30",
	"-a -t 10.0.0.4:0 -r 10.0.1.16:0 -g",
}

// stdout runs a command on h and returns its standard output only.
func stdout(t *testing.T, h *topo.Host, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := h.Command(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return string(out)
}

// TestIpvsadmCompat checks lvs-node's ipvsadm-compatible outputs against
// Debian's ipvsadm on the same kernel table.
func TestIpvsadmCompat(t *testing.T) {
	modprobe(t, "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_sh", "ip_vs_mh")
	l := topo.New(t)
	lan := l.Net("lan", "10.0.0.0/24")
	dir := l.Host("dir", topo.On(lan, "10.0.0.254"))

	for _, r := range variedRules {
		dir.MustRun(t, "ipvsadm", strings.Fields(r)...)
	}

	// Some traffic so that the connection columns are not all zero:
	// connections from the director itself go through IPVS (LOCAL_OUT) and
	// end there, as the real servers do not exist; nothing leaves the
	// namespace.
	if err := dir.Do(func() error {
		for _, a := range []string{"10.0.0.1:80", "10.0.0.1:443", "172.16.0.9:25"} {
			if c, err := net.DialTimeout("tcp", a, 300*time.Millisecond); err == nil {
				c.Close()
			}
		}
		c, err := net.Dial("udp", "10.0.0.2:53")
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < 5; i++ {
			if _, err := c.Write([]byte("query")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("traffic: %v", err)
	}
	// The kernel folds its per-CPU counters into what netlink reports only
	// on each estimator tick (every 2 s): wait until the traffic shows, then
	// one more tick, so both tools read the same settled counters.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout(t, dir, "", "ipvsadm", "-Ln", "--stats", "--exact"), "UDP  10.0.0.2:53                         5") {
		if time.Now().After(deadline) {
			t.Fatalf("traffic never showed in the kernel's counters:\n%s", stdout(t, dir, "", "ipvsadm", "-Ln", "--stats", "--exact"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond)
	stats := stdout(t, dir, "", "ipvsadm", "-Ln", "--stats", "--exact")
	t.Logf("ipvsadm -Ln --stats --exact:\n%s", stats)

	// Listings: every layout byte for byte. --rate is left out: the
	// kernel's rate estimator moves between two commands.
	for _, layout := range [][]string{
		{}, {"--stats"}, {"--thresholds"}, {"--persistent-conn"}, {"--tun-info"},
		{"--stats", "--exact"}, {"--nosort"},
	} {
		want := stdout(t, dir, "", "ipvsadm", append([]string{"-Ln"}, layout...)...)
		got := stdout(t, dir, "", "lvs-node", append([]string{"ipvs", "list"}, layout...)...)
		if got != want {
			t.Errorf("lvs-node ipvs list %s differs from ipvsadm -Ln %s\n--- lvs-node\n%s--- ipvsadm\n%s",
				strings.Join(layout, " "), strings.Join(layout, " "), got, want)
		}
	}
	if t.Failed() {
		return
	}
	before := stdout(t, dir, "", "ipvsadm", "-Ln")
	t.Logf("ipvsadm -Ln:\n%s", before)
	// ipvsadm's own sorting quirk is real: 172.16/12 lists before 10/8.
	if i, j := strings.Index(before, "TCP  172.16.0.9:25"), strings.Index(before, "TCP  10.0.0.1:80"); i < 0 || j < 0 || i > j {
		t.Errorf("ipvsadm did not list 172.16.0.9 before 10.0.0.1:\n%s", before)
	}
	if n := strings.Count(before, "\n  -> ") - 1; n != strings.Count(strings.Join(variedRules, "\n"), "-a ") {
		t.Fatalf("table holds %d real servers, want every -a rule:\n%s", n, before)
	}

	// JSON: the same services and real servers.
	var doc struct {
		Services []struct {
			RealServers []struct{} `json:"real_servers"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(stdout(t, dir, "", "lvs-node", "ipvs", "list", "--json")), &doc); err != nil {
		t.Fatalf("--json: %v", err)
	}
	nsvc, ndest := 0, 0
	for _, s := range doc.Services {
		nsvc++
		ndest += len(s.RealServers)
	}
	if wantS, wantD := strings.Count(before, "\nTCP ")+strings.Count(before, "\nUDP ")+strings.Count(before, "\nSCTP ")+strings.Count(before, "\nFWM "),
		strings.Count(before, "\n  -> ")-1; nsvc != wantS || ndest != wantD {
		t.Errorf("--json has %d services and %d real servers, ipvsadm lists %d and %d", nsvc, ndest, wantS, wantD)
	}

	if os.Getenv("LVS_IPVSADM_CAPTURE") == "1" {
		captureGolden(t, dir)
	}

	// Save: identical to ipvsadm -Sn, and ipvsadm -R rebuilds the table.
	saved := stdout(t, dir, "", "lvs-node", "ipvs", "save")
	if want := stdout(t, dir, "", "ipvsadm", "-Sn"); saved != want {
		t.Errorf("lvs-node ipvs save differs from ipvsadm -Sn\n--- lvs-node\n%s--- ipvsadm\n%s", saved, want)
	}
	dir.MustRun(t, "ipvsadm", "-C")
	if empty := stdout(t, dir, "", "ipvsadm", "-Ln"); strings.Count(empty, "\n") != 3 {
		t.Fatalf("ipvsadm -C left entries:\n%s", empty)
	}
	stdout(t, dir, saved, "ipvsadm", "-R")
	// Thresholds are not part of ipvsadm's save format; everything else
	// must come back identical.
	after := stdout(t, dir, "", "ipvsadm", "-Ln")
	if after != before {
		t.Errorf("ipvsadm -R of lvs-node ipvs save did not recreate the table\n--- after\n%s--- before\n%s", after, before)
	}
	if got := stdout(t, dir, "", "lvs-node", "ipvs", "list"); got != after {
		t.Errorf("after restore, lvs-node ipvs list differs\n--- lvs-node\n%s--- ipvsadm\n%s", got, after)
	}

	// Import: ipvsadm -Sn output becomes a valid director config holding
	// every service that the director can express.
	yml := stdout(t, dir, stdout(t, dir, "", "ipvsadm", "-Sn"), "lvs-node", "import", "ipvsadm", "-")
	path := filepath.Join(t.TempDir(), "director.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := director.LoadConfig(path)
	if err != nil {
		t.Fatalf("imported config does not load: %v\n%s", err, yml)
	}
	if n := len(cfg.VirtualServices); n != strings.Count(saved, "-A ") {
		t.Errorf("imported config has %d services, the table %d\n%s", n, strings.Count(saved, "-A "), yml)
	}
	for _, s := range cfg.VirtualServices {
		if s.Name == "tcp-10.0.0.1-443" {
			if s.Scheduler != "sh" || strings.Join(s.SchedulerFlags, ",") != "sh-fallback,sh-port" ||
				s.Persistence == nil || s.Persistence.Netmask != "255.255.255.0" || s.Persistence.Timeout.D() != 360*time.Second {
				t.Errorf("tcp-10.0.0.1-443 imported as %+v", s)
			}
		}
	}
}

// captureGolden prints, for internal/ipvsadm/testdata, what Debian's
// ipvsadm shows of this table (-Sn, -Ln, --stats, --rate) and what lvs-node
// read of it (ipvs list --json, the input of the unit tests), all from one
// moment: the JSON is read before and after the ipvsadm outputs and must
// not have changed (the rate estimator ticks every 2 s). Each file is one
// line "LVSCAPTURE name base64" on standard output, so the serial console
// cannot touch trailing blanks. See internal/ipvsadm/testdata/README.md.
func captureGolden(t *testing.T, dir *topo.Host) {
	t.Helper()
	for try := 0; try < 10; try++ {
		before := stdout(t, dir, "", "lvs-node", "ipvs", "list", "--json")
		files := map[string]string{
			"varied.save":  stdout(t, dir, "", "ipvsadm", "-Sn"),
			"varied.list":  stdout(t, dir, "", "ipvsadm", "-Ln"),
			"varied.stats": stdout(t, dir, "", "ipvsadm", "-Ln", "--stats"),
			"varied.rate":  stdout(t, dir, "", "ipvsadm", "-Ln", "--rate"),
		}
		if after := stdout(t, dir, "", "lvs-node", "ipvs", "list", "--json"); after != before {
			time.Sleep(300 * time.Millisecond)
			continue
		}
		files["varied.json"] = before
		for _, name := range slices.Sorted(maps.Keys(files)) {
			fmt.Printf("LVSCAPTURE %s %s\n", name, base64.StdEncoding.EncodeToString([]byte(files[name])))
		}
		return
	}
	t.Fatal("the table kept changing: no consistent capture in 10 tries")
}
