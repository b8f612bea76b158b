package ipvsadm

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// The lab checks these lines byte for byte against ipvsadm --list
// --daemon on a real kernel (e2e.TestSyncDaemonMatchesIpvsadm); this test
// pins the order and the optional fields.
func TestWriteDaemons(t *testing.T) {
	var b strings.Builder
	err := WriteDaemons(&b, []ipvs.SyncDaemon{
		{State: ipvs.SyncBackup, Interface: "eth1", SyncID: 3, MaxLen: 1452, Group: netip.MustParseAddr("ff02::81"), Port: 9000, TTL: 2},
		{State: ipvs.SyncMaster, Interface: "eth0", SyncID: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "master sync daemon (mcast=eth0, syncid=3)\n" +
		"backup sync daemon (mcast=eth1, syncid=3, maxlen=1452, group=ff02::81, port=9000, ttl=2)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteDaemons(&b, nil); err != nil || b.Len() != 0 {
		t.Errorf("no daemon printed %q, %v", b.String(), err)
	}
}
