package ipvsadm

import (
	"bufio"
	"fmt"
	"io"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// WriteDaemons prints the sync daemons as "ipvsadm --list --daemon"
// (ipvsadm 1.31) does: one line each, master before backup, the optional
// fields only when the kernel reports them; nothing when none runs.
func WriteDaemons(w io.Writer, ds []ipvs.SyncDaemon) error {
	bw := bufio.NewWriter(w)
	for _, st := range []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup} {
		for _, d := range ds {
			if d.State != st {
				continue
			}
			fmt.Fprintf(bw, "%s sync daemon (mcast=%s, syncid=%d", d.State, d.Interface, int32(d.SyncID))
			if d.MaxLen != 0 {
				fmt.Fprintf(bw, ", maxlen=%d", d.MaxLen)
			}
			if d.Group.IsValid() {
				fmt.Fprintf(bw, ", group=%s", d.Group)
			}
			if d.Port != 0 {
				fmt.Fprintf(bw, ", port=%d", d.Port)
			}
			if d.TTL != 0 {
				fmt.Fprintf(bw, ", ttl=%d", d.TTL)
			}
			bw.WriteString(")\n")
		}
	}
	return bw.Flush()
}
