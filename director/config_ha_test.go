package director

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

const haServices = `virtual_services:
  - name: web
    vip: 192.0.2.10
    port: 80
    scheduler: mh
    scheduler_flags: [mh-port]
    real_servers: [{address: 10.0.0.11}]
`

func TestHAConfig(t *testing.T) {
	cfg, _, err := ParseConfig("ha.yaml", []byte(haServices+`sync_daemon:
  interface: eth1
  sync_id: 7
  group: 239.1.1.1
  port: 9000
  ttl: 2
announce:
  bird: {include_file: /run/lvs-node/vips.conf, socket: /run/bird/test.ctl}
  min_up: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	want := ipvs.SyncDaemon{State: ipvs.SyncBackup, Interface: "eth1", SyncID: 7, Group: netip.MustParseAddr("239.1.1.1"), Port: 9000, TTL: 2}
	if got := cfg.HA.SyncDaemon.Daemon(ipvs.SyncBackup); got != want {
		t.Errorf("daemon %+v, want %+v", got, want)
	}
	a := cfg.HA.Announce
	if a.MinUpOrDefault() != 2 || a.BIRD.Birdc != DefaultBirdc || a.BIRD.IncludeFile != "/run/lvs-node/vips.conf" || a.BIRD.Timeout.D() != DefaultBIRDTimeout {
		t.Errorf("announce %+v", a)
	}

	cfg, _, err = ParseConfig("ha.yaml", []byte(haServices+"announce: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.HA.Announce.BIRD
	if b.IncludeFile != DefaultBIRDInclude || b.Socket != DefaultBIRDSocket || cfg.HA.Announce.MinUpOrDefault() != 1 || b.Timeout.D() != 10*time.Second {
		t.Errorf("defaults %+v", cfg.HA.Announce)
	}
	if cfg.HA.SyncDaemon != nil {
		t.Error("sync_daemon set although absent")
	}
}

func TestHAConfigErrors(t *testing.T) {
	_, _, err := ParseConfig("ha.yaml", []byte(haServices+`sync_daemon:
  interface: eth1/x
  sync_id: 300
  group: 10.0.0.1
  max_len: 50
announce:
  bird: {include_file: vips.conf, socket: bird.ctl, timeout: 1ms, birdc: /usr/sbin/birdc}
  min_up: -1
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"ha.yaml:9:3: sync_daemon.interface:",
		"ha.yaml:10:3: sync_daemon.sync_id: must be from 0 to 255",
		"ha.yaml:11:3: sync_daemon.group:",
		"ha.yaml:12:3: sync_daemon.max_len:",
		"ha.yaml:14:10: announce.bird.include_file: must be an absolute path",
		"announce.bird.socket: must be an absolute path",
		"announce.bird.timeout: must be from 100ms",
		"ha.yaml:15:3: announce.min_up: must be 0 or more",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	if _, _, err := ParseConfig("ha.yaml", []byte(haServices+"sync_daemon: {sync_id: 1}\n")); err == nil || !strings.Contains(err.Error(), "sync_daemon.interface: the sync daemon needs") {
		t.Errorf("no interface: %v", err)
	}
	if _, _, err := ParseConfig("ha.yaml", []byte(haServices+"announce: {bgp: {}}\n")); err == nil || !strings.Contains(err.Error(), `unknown key "bgp"`) {
		t.Errorf("unknown key: %v", err)
	}
}
