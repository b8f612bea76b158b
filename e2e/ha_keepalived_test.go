//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// haDirector is one director of the active-backup pair: lvs-node
// programs IPVS and drives the sync daemons, keepalived owns the VIP.
type haDirector struct {
	h         *topo.Host
	dir, cfg  string
	sock, kac string
	lvs, ka   *topo.Proc
}

const haVIP = "10.0.0.50"

func newHADirector(t *testing.T, l *topo.Lab, n *topo.Net, name, addr string, priority int) *haDirector {
	t.Helper()
	d := &haDirector{h: l.Host(name, topo.On(n, addr)), dir: t.TempDir()}
	d.sock = filepath.Join(d.dir, "control.sock")
	d.cfg = haWrite(t, d.dir, "director.yaml", fmt.Sprintf(`director: {state_dir: %s, resync_interval: 5s}
listen: {metrics: "", control: %s}
virtual_services:
  - name: echo
    vip: %s
    port: 7000
    scheduler: rr
    real_servers: [{address: 10.0.0.11}, {address: 10.0.0.12}]
sync_daemon: {interface: eth0, sync_id: 51}
`, filepath.Join(d.dir, "state"), d.sock, haVIP))
	hook := func(role string) string {
		return fmt.Sprintf(`"/usr/sbin/lvs-node director ha %s --socket %s"`, role, d.sock)
	}
	d.kac = haWrite(t, d.dir, "keepalived.conf", fmt.Sprintf(`global_defs {
  router_id %s
  script_user root
  enable_script_security
  vrrp_garp_master_repeat 3
  vrrp_version 3
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %d
  advert_int 0.5
  virtual_ipaddress {
    %s/32 dev eth0
  }
  notify_master %s
  notify_backup %s
  notify_fault %s
  notify_stop %s
}
`, name, priority, haVIP, hook("master"), hook("backup"), hook("fault"), hook("backup")))
	return d
}

func (d *haDirector) startLVS(t *testing.T) {
	t.Helper()
	d.lvs = d.h.Start(t, "lvs-node", "director", "--config", d.cfg)
	if !d.lvs.WaitOutput("msg=applied", 60*time.Second) {
		t.Fatalf("%s: director did not apply:\n%s", d.h.Name, d.lvs.Output())
	}
}

func (d *haDirector) startKeepalived(t *testing.T) {
	t.Helper()
	d.ka = d.h.Start(t, "keepalived", "-n", "-l", "-P", "-f", d.kac,
		"-p", filepath.Join(d.dir, "ka.pid"), "-r", filepath.Join(d.dir, "vrrp.pid"))
}

func (d *haDirector) hasVIP(t *testing.T) bool {
	out, _ := d.h.Run(t, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	return strings.Contains(out, " "+haVIP+"/32")
}

// syncedConn reports whether the director's IPVS holds a connection from
// client (ip:port) to the VIP.
func (d *haDirector) hasConn(t *testing.T, client string) bool {
	out, _ := d.h.Run(t, "ipvsadm", "-Lnc")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, client) && strings.Contains(line, haVIP+":7000") && strings.Contains(line, "ESTABLISHED") {
			return true
		}
	}
	return false
}

func (d *haDirector) stop(t *testing.T) {
	t.Helper()
	_ = d.ka.Stop(10 * time.Second)
	_ = d.lvs.Stop(10 * time.Second)
}

// haPair makes the lab of the active-backup pair: a client, two DR real
// servers answering on port 7000 with their names, and two directors
// each running lvs-node and keepalived, dir1 (priority 150) the master
// once both are up.
func haPair(t *testing.T) (client *topo.Host, d1, d2 *haDirector) {
	t.Helper()
	modprobe(t, "ip_vs", "ip_vs_rr")
	l := topo.New(t)
	n := l.Net("lan", "10.0.0.0/24")
	client = l.Host("client", topo.On(n, "10.0.0.100"))
	for i, name := range []string{"rs1", "rs2"} {
		rs := l.Host(name, topo.On(n, fmt.Sprintf("10.0.0.%d", 11+i)))
		drRealServer(t, rs, haVIP)
		nameEchoServer(t, rs, 7000)
	}
	d1 = newHADirector(t, l, n, "dir1", "10.0.0.1", 150)
	d2 = newHADirector(t, l, n, "dir2", "10.0.0.2", 100)
	for _, d := range []*haDirector{d1, d2} {
		d.startLVS(t)
		d.startKeepalived(t)
	}
	haWait(t, "dir1 to hold the VIP", 20*time.Second, func() bool { return d1.hasVIP(t) && !d2.hasVIP(t) })
	d1.waitMaster(t)
	return client, d1, d2
}

// waitMaster waits until lvs-node on d runs as master with a master
// sync daemon.
func (d *haDirector) waitMaster(t *testing.T) {
	t.Helper()
	haWait(t, d.h.Name+"'s role master with a master sync daemon", 10*time.Second, func() bool {
		out, _ := d.h.Run(t, "lvs-node", "director", "ha", "status", "--socket", d.sock)
		return strings.Contains(out, "role: master") && strings.Contains(out, "master on eth0, sync id 51: running")
	})
}

// TestHAKeepalivedFailover: two directors, keepalived's VRRP moving the
// VIP, lvs-node following the role with the kernel's sync daemons. A
// long-lived TCP connection through the VIP (DR) keeps exchanging data
// when the master is stopped and again after failback.
func TestHAKeepalivedFailover(t *testing.T) {
	client, d1, d2 := haPair(t)
	st2 := d2.h.MustRun(t, "lvs-node", "director", "ha", "status", "--socket", d2.sock)
	mustContain(t, "dir2 status", st2, "role: backup", "backup on eth0, sync id 51: running", "keepalived: running")
	if strings.Contains(st2, "master on") {
		t.Fatalf("the backup runs a master sync daemon:\n%s", st2)
	}
	// The sync daemons as the kernel reports them.
	mustContain(t, "dir1 daemons", d1.h.MustRun(t, "lvs-node", "ipvs", "sync", "status"), "master sync daemon (mcast=eth0, syncid=51", "backup sync daemon (mcast=eth0, syncid=51")
	if got, want := d2.h.MustRun(t, "lvs-node", "ipvs", "sync", "status"), d2.h.MustRun(t, "ipvsadm", "--list", "--daemon"); got != want || !strings.HasPrefix(got, "backup sync daemon") || strings.Contains(got, "master") {
		t.Fatalf("dir2 daemons: %q, ipvsadm %q", got, want)
	}

	local := "10.0.0.100:40001"
	lc := startLongConn(t, client, local, haVIP+":7000", 20*time.Millisecond)
	lc.waitExchanges(t, 20, 30*time.Second)
	took := haWait(t, "the connection entry synced to dir2", 30*time.Second, func() bool { return d2.hasConn(t, local) })
	t.Logf("connection entry on dir2 %v after it reached 20 exchanges", took)
	n0, _, servers, _ := lc.state()

	// Failover: the master director stops (keepalived and lvs-node).
	stopped := time.Now()
	d1.stop(t)
	haWait(t, "dir2 to hold the VIP", 10*time.Second, func() bool { return d2.hasVIP(t) })
	failover := time.Since(stopped)
	t.Logf("MEASURED failover: dir2 holds the VIP %v after the master was told to stop", failover)
	if failover > 3*time.Second {
		t.Errorf("failover took %v, want within 3s", failover)
	}
	lc.waitExchanges(t, n0+50, 30*time.Second)
	n1, gap1, servers1, err := lc.state()
	t.Logf("MEASURED failover: longest silence of the connection %v (%d exchanges, servers %v)", gap1, n1, servers1)
	if err != nil || len(servers1) != 1 || len(servers) != 1 {
		t.Fatalf("connection after failover: %v, servers before %v after %v", err, servers, servers1)
	}
	d2.waitMaster(t)
	t.Logf("failover complete %v after the stop", time.Since(stopped))

	// Failback: dir1 comes back, receives the entry from dir2's master
	// daemon before its keepalived starts, then preempts.
	d1.startLVS(t)
	haWait(t, "the connection entry synced back to dir1", 30*time.Second, func() bool { return d1.hasConn(t, local) })
	d1.startKeepalived(t)
	back := time.Now()
	fb := haWait(t, "dir1 to take the VIP back", 30*time.Second, func() bool { return d1.hasVIP(t) && !d2.hasVIP(t) })
	t.Logf("MEASURED failback: dir1 holds the VIP %v after its keepalived started", fb)
	n2, _, _, _ := lc.state()
	lc.waitExchanges(t, n2+50, 30*time.Second)
	n3, gap2, servers2, err := lc.state()
	t.Logf("MEASURED failback: longest silence of the connection over the whole test %v (%d exchanges, servers %v)", gap2, n3, servers2)
	if err != nil || len(servers2) != 1 {
		t.Fatalf("connection after failback: %v, servers %v", err, servers2)
	}
	haWait(t, "dir2's role backup", 10*time.Second, func() bool {
		out, _ := d2.h.Run(t, "lvs-node", "director", "ha", "status", "--socket", d2.sock)
		return strings.Contains(out, "role: backup") && !strings.Contains(out, "master on")
	})
	t.Logf("failback complete %v after dir1's keepalived started", time.Since(back))
}
