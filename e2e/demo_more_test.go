//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// demoHA is the high-availability part of the demo: keepalived's VRRP
// moves the VIP, lvs-node follows the role and the kernel's connection
// sync keeps a long-lived connection through the failover.
func demoHA(t *testing.T, say func(string, ...any)) {
	say("\n== high availability: keepalived's VRRP moves the VIP %s between dir1 and dir2; lvs-node programs IPVS on both and follows the role with the kernel's connection sync ==", haVIP)
	client, d1, d2 := haPair(t)
	say("   dir1 (priority 150) holds the VIP:")
	say("%s", indent(d1.h.MustRun(t, "lvs-node", "director", "ha", "status", "--socket", d1.sock)))
	say("   dir2:")
	say("%s", indent(d2.h.MustRun(t, "lvs-node", "director", "ha", "status", "--socket", d2.sock)))
	local := "10.0.0.100:40001"
	lc := startLongConn(t, client, local, haVIP+":7000", 20*time.Millisecond)
	lc.waitExchanges(t, 20, 30*time.Second)
	haWait(t, "the connection entry synced to dir2", 30*time.Second, func() bool { return d2.hasConn(t, local) })
	n0, _, servers, _ := lc.state()
	say("   the client %s keeps a connection to %s:7000, a line every 20 ms, answered by %v; dir2's kernel already has its entry (connection sync)", local, haVIP, servers)
	stopped := time.Now()
	d1.stop(t)
	haWait(t, "dir2 to hold the VIP", 10*time.Second, func() bool { return d2.hasVIP(t) })
	took := time.Since(stopped)
	lc.waitExchanges(t, n0+50, 30*time.Second)
	n1, gap, servers1, err := lc.state()
	if err != nil || len(servers1) != 1 {
		t.Fatalf("the connection after the failover: %v, servers %v", err, servers1)
	}
	say("   dir1 stopped (keepalived and lvs-node): dir2 holds the VIP %v later; the connection goes on, %d lines so far, longest silence %v, still answered by %v",
		took.Round(time.Millisecond), n1, gap.Round(time.Millisecond), servers1)
	d2.waitMaster(t)
	say("%s", indent(d2.h.MustRun(t, "lvs-node", "director", "ha", "status", "--socket", d2.sock)))
}

// demoImport is the migration part of the demo: a keepalived.conf and an
// ipvsadm script as sites run them, imported, checked and programmed; the
// table is the one the original programs (the samples' .want files, which
// TestImportRoundTrip also has keepalived and the script program).
func demoImport(t *testing.T, say func(string, ...any)) {
	modprobe(t, "ip_vs")
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(samplesGuestDir)); err != nil {
		t.Fatal(err)
	}
	l := topo.New(t)
	lan := l.Net("lan", "10.99.0.0/24")
	say("\n== migration: the files sites already run, imported ==")
	for _, s := range []struct{ host, addr, file, importer string }{
		{"kadir", "10.99.0.3/24", "dr-web.keepalived.conf", "keepalived"},
		{"shdir", "10.99.0.4/24", "lvs_dr.sh", "ipvsadm"},
	} {
		d := l.Host(s.host, topo.On(lan, s.addr))
		cmd := d.Command(context.Background(), "lvs-node", "import", s.importer, s.file)
		cmd.Dir = dir
		yml, err := cmd.Output()
		if err != nil {
			t.Fatalf("lvs-node import %s %s: %v", s.importer, s.file, err)
		}
		say("   lvs-node import %s %s:", s.importer, s.file)
		lines := strings.Split(strings.TrimRight(string(yml), "\n"), "\n")
		if len(lines) > 24 {
			lines = append(lines[:24], "...")
		}
		say("%s", indent(strings.Join(lines, "\n")))
		cfg := filepath.Join(dir, s.file+".yaml")
		if err := os.WriteFile(cfg, directorDoc(t, yml, filepath.Join(dir, s.file+".state")), 0o600); err != nil {
			t.Fatal(err)
		}
		d.MustRun(t, "lvs-node", "director", "--once", "--config", cfg)
		want, err := os.ReadFile(filepath.Join(dir, s.file+".want"))
		if err != nil {
			t.Fatal(err)
		}
		if got := normalSave(t, "imported", stdout(t, d, "", "ipvsadm", "-Sn")); got != normalSave(t, s.file+".want", string(want)) {
			t.Fatalf("the import of %s programs another table\n--- got\n%s--- want\n%s", s.file, got, want)
		}
		say("   lvs-node director --once programs the table the original programs:")
		say("%s", indent(d.MustRun(t, "lvs-node", "ipvs", "list")))
	}
}
