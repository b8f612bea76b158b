package rsagent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/control"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

const ctlConfig = `realserver:
  state_dir: STATE
  watch_interval: 100ms
  vips:
    - {address: 10.0.0.100, mode: dr}
    - {address: 10.0.0.101, mode: tun}
`

func TestControlStatusAndReload(t *testing.T) {
	f := newFake(t)
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	cfgPath := filepath.Join(tmp, "rs.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(strings.Replace(body, "STATE", state, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(ctlConfig)
	c, doc, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, f, c, doc)
	var logs syncBuf
	a.log = slog.New(slog.NewTextHandler(&logs, nil))
	m := NewMetrics()
	sock := filepath.Join(tmp, "run", "rs.sock")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx, RunOptions{Metrics: m, ConfigPath: cfgPath, Control: sock}) }()
	t.Cleanup(func() { cancel(); <-errc })
	waitFor(t, 2*time.Second, "daemon ready", func() bool { return strings.Contains(logs.String(), "real server ready") })
	bg := context.Background()

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v, want a socket with 0600", fi.Mode())
	}

	// One repair, then the status shows what is applied and the originals.
	vip := Addr{Dev: "lo", Prefix: mustPrefix("10.0.0.100/32")}
	if err := f.Del(vip); err != nil {
		t.Fatal(err)
	}
	f.notify()
	waitFor(t, 2*time.Second, "VIP repaired", func() bool { s, _ := f.Snapshot(); return s.HasAddr(vip) })
	st, err := RequestStatus(bg, sock)
	if err != nil {
		t.Fatal(err)
	}
	wantText := `config: ` + cfgPath + `
vips:
  10.0.0.100 dr on lo: applied
  10.0.0.101 tun on tunl0: applied
sysctls (current, recorded original):
  net/ipv4/conf/all/arp_announce = 2, original 0
  net/ipv4/conf/all/arp_ignore = 1, original 0
  net/ipv4/conf/all/rp_filter = 0, original 2
  net/ipv4/conf/lo/arp_announce = 2, original 0
  net/ipv4/conf/lo/arp_ignore = 1, original 0
  net/ipv4/conf/tunl0/arp_announce = 2, original 0
  net/ipv4/conf/tunl0/arp_ignore = 1, original 0
  net/ipv4/conf/tunl0/rp_filter = 0, original 2
added by lvs-node (removed by down):
  ip link set tunl0 up
  ip addr add 10.0.0.100/32 dev lo label lo:lvs
  ip addr add 10.0.0.101/32 dev tunl0
repairs: 1
reloads: 0
`
	if got := st.Text(); got != wantText {
		t.Errorf("status:\n%s\nwant:\n%s", got, wantText)
	}
	before := f.String()

	// Refused reloads change nothing: a file that does not validate, one
	// that moves state_dir, one the host refuses (gateway not connected).
	for _, c := range []struct{ body, want string }{
		{strings.Replace(ctlConfig, "mode: tun", "mode: tunnel", 1), `rs.yaml:6:29: realserver.vips[1].mode: want dr, tun or nat, got "tunnel"`},
		{strings.Replace(ctlConfig, "STATE", "/var/lib/elsewhere", 1), "realserver.state_dir: state_dir cannot change on reload"},
		{ctlConfig + "    - {address: 192.168.50.100, mode: nat, gateway: 172.16.0.1}\n", "realserver.vips[2].gateway: gateway 172.16.0.1 is not on a connected network"},
	} {
		write(c.body)
		changes, err := RequestReload(bg, sock)
		if !errors.Is(err, ErrReloadRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("reload of a bad file: %v (changes %q), want refusal with %q", err, changes, c.want)
		}
		if got := f.String(); got != before {
			t.Errorf("refused reload changed the host:\n%s\nwant:\n%s", got, before)
		}
	}
	st, err = RequestStatus(bg, sock)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Text(); got != wantText {
		t.Errorf("status after refused reloads:\n%s\nwant:\n%s", got, wantText)
	}

	// A good file: the tun VIP goes, a dr VIP comes; the daemon reads the
	// file itself.
	write(strings.Replace(ctlConfig, "10.0.0.101, mode: tun", "10.0.0.102, mode: dr", 1))
	changes, err := RequestReload(bg, sock)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges := []string{
		"ip addr del 10.0.0.101/32 dev tunl0",
		"ip link set tunl0 down",
		"sysctl -w net/ipv4/conf/all/rp_filter=2",
		"sysctl -w net/ipv4/conf/tunl0/arp_announce=0",
		"sysctl -w net/ipv4/conf/tunl0/arp_ignore=0",
		"sysctl -w net/ipv4/conf/tunl0/rp_filter=2",
		"ip addr add 10.0.0.102/32 dev lo label lo:lvs",
	}
	if strings.Join(changes, "\n") != strings.Join(wantChanges, "\n") {
		t.Errorf("reload changes:\n%s\nwant:\n%s", strings.Join(changes, "\n"), strings.Join(wantChanges, "\n"))
	}
	st, err = RequestStatus(bg, sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Reloads != 1 || len(st.VIPs) != 2 || st.VIPs[1].Address != "10.0.0.102" || !st.VIPs[1].Applied {
		t.Errorf("status after reload:\n%s", st.Text())
	}
	if got := testutil.ToFloat64(m.reloads.WithLabelValues("refused")); got != 3 {
		t.Errorf("refused reloads counted %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.reloads.WithLabelValues("ok")); got != 1 {
		t.Errorf("reloads counted %v, want 1", got)
	}

	// Nothing else is accepted.
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte("add 10.0.0.103\n"))
	var buf [256]byte
	n, _ := conn.Read(buf[:])
	conn.Close()
	if got := string(buf[:n]); !strings.HasPrefix(got, "error\nunknown command") {
		t.Errorf("unknown command answered %q", got)
	}

	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	errc <- nil
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket left behind after exit: %v", err)
	}
	if _, err := RequestStatus(bg, sock); err == nil {
		t.Error("status answered after exit")
	}
}

func TestControlSocketInUse(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "rs.sock")
	ln, err := control.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := control.Listen(sock); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second listener: %v, want in use", err)
	}
	ln.Close()
	// A file that is not a socket is left alone.
	if err := os.WriteFile(sock, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := control.Listen(sock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listener over a plain file: %v", err)
	}
}
