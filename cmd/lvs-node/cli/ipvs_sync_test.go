package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
)

type fakeSync struct{ *ipvstest.Sync }

func (fakeSync) Close() error { return nil }

func runSync(t *testing.T, k *ipvstest.Sync, args ...string) (string, error) {
	t.Helper()
	cmd := newIPVSSyncCmd(func() (syncKernel, error) { return fakeSync{k}, nil })
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestIPVSSync(t *testing.T) {
	k := ipvstest.NewSync("eth0", "eth1")
	if _, err := runSync(t, k, "start", "master", "--mcast-interface", "eth0", "--syncid", "4"); err != nil {
		t.Fatal(err)
	}
	if _, err := runSync(t, k, "start", "backup", "--mcast-interface", "eth1", "--syncid", "4", "--mcast-group", "239.0.0.9", "--mcast-port", "9000", "--mcast-ttl", "2", "--sync-maxlen", "1200"); err != nil {
		t.Fatal(err)
	}
	out, err := runSync(t, k, "status")
	if err != nil {
		t.Fatal(err)
	}
	want := "master sync daemon (mcast=eth0, syncid=4, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n" +
		"backup sync daemon (mcast=eth1, syncid=4, maxlen=1200, group=239.0.0.9, port=9000, ttl=2)\n"
	if out != want {
		t.Errorf("status:\n%s\nwant\n%s", out, want)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"start", "master", "--mcast-interface", "eth0"}, "already running"},
		{[]string{"start", "both", "--mcast-interface", "eth0"}, "want master or backup"},
		{[]string{"start", "backup", "--mcast-interface", "eth9"}, "already running"},
		{[]string{"start", "master", "--mcast-interface", "eth0", "--mcast-group", "10.0.0.1"}, "not a multicast"},
		{[]string{"start", "master"}, "mcast-interface"},
	} {
		if _, err := runSync(t, k, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.args, err, c.want)
		}
	}
	if out, err := runSync(t, k, "stop", "master"); err != nil || !strings.Contains(out, "stopped the master") {
		t.Errorf("stop master: %q, %v", out, err)
	}
	if _, err := runSync(t, k, "stop", "master"); err == nil || !strings.Contains(err.Error(), "no master sync daemon") {
		t.Errorf("second stop master: %v", err)
	}
	if _, err := runSync(t, k, "start", "master", "--mcast-interface", "eth9"); err == nil || !strings.Contains(err.Error(), "no interface eth9") {
		t.Errorf("unknown interface: %v", err)
	}
	if out, err := runSync(t, k, "stop"); err != nil || out != "stopped the backup sync daemon\n" {
		t.Errorf("stop all: %q, %v", out, err)
	}
	if out, err := runSync(t, k, "stop"); err != nil || out != "no sync daemon was running\n" {
		t.Errorf("stop none: %q, %v", out, err)
	}
	if out, _ := runSync(t, k, "status"); out != "" {
		t.Errorf("status with none: %q", out)
	}
}

// A kernel that does not answer: the command gives up within its bound.
func TestIPVSSyncBounded(t *testing.T) {
	k := ipvstest.NewSync("eth0")
	release := k.Hold()
	defer release()
	cmd := newIPVSSyncCmd(func() (syncKernel, error) { return fakeSync{k}, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	cmd.SetArgs([]string{"status"})
	cmd.SetOut(&bytes.Buffer{})
	start := time.Now()
	err := cmd.ExecuteContext(ctx)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("held kernel: %v after %v", err, time.Since(start))
	}
}
