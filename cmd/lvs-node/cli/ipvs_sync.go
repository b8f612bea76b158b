package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvsadm"
)

// syncKernel is what "lvs-node ipvs sync" needs from the kernel.
type syncKernel interface {
	StartSync(ctx context.Context, d ipvs.SyncDaemon) error
	StopSync(ctx context.Context, s ipvs.SyncState) error
	SyncDaemons(ctx context.Context) ([]ipvs.SyncDaemon, error)
	Close() error
}

// syncOpener opens the kernel's IPVS (or a fake in tests).
type syncOpener func() (syncKernel, error)

func openKernelSync() (syncKernel, error) {
	c, err := ipvs.Open()
	if err != nil {
		return nil, fmt.Errorf("open IPVS: %w", err)
	}
	return c, nil
}

// syncTimeout bounds one sync-daemon command (a start waits for the
// kernel's threads).
const syncTimeout = 30 * time.Second

// newIPVSSyncCmd builds "lvs-node ipvs sync start|stop|status", the
// kernel's connection-sync daemon as ipvsadm --start-daemon,
// --stop-daemon and --list --daemon drive it.
func newIPVSSyncCmd(open syncOpener) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Start, stop and show the kernel's IPVS connection-sync daemons",
		Long: `The kernel's sync daemon copies connection entries between directors over
multicast: a master sends this director's connections, a backup receives
its peers'. Both may run at once. lvs-node director manages them itself when
its configuration has sync_daemon; these commands are for hand use, with
ipvsadm's option names.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	call := func(cmd *cobra.Command, fn func(ctx context.Context, k syncKernel) error) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), syncTimeout)
		defer cancel()
		k, err := open()
		if err != nil {
			return err
		}
		defer k.Close()
		return fn(ctx, k)
	}

	var (
		d     ipvs.SyncDaemon
		group string
	)
	start := &cobra.Command{
		Use:     "start master|backup --mcast-interface IF --syncid N",
		Short:   "Start a sync daemon (ipvsadm --start-daemon)",
		Example: "  lvs-node ipvs sync start master --mcast-interface eth1 --syncid 1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := ipvs.ParseSyncState(args[0])
			if err != nil {
				return err
			}
			d.State = st
			if group != "" {
				if d.Group, err = netip.ParseAddr(group); err != nil {
					return fmt.Errorf("--mcast-group: want an IPv4 or IPv6 multicast address, got %q", group)
				}
			}
			if err := ipvs.CheckSyncDaemon(d); err != nil {
				return err
			}
			return call(cmd, func(ctx context.Context, k syncKernel) error {
				err := k.StartSync(ctx, d)
				switch {
				case errors.Is(err, syscall.EEXIST):
					return fmt.Errorf("a %s sync daemon is already running (stop it first): %w", st, err)
				case errors.Is(err, syscall.ENODEV):
					return fmt.Errorf("no interface %s in this network namespace: %w", d.Interface, err)
				}
				return err
			})
		},
	}
	f := start.Flags()
	f.StringVar(&d.Interface, "mcast-interface", "", "multicast interface (required)")
	f.Uint32Var(&d.SyncID, "syncid", 0, "sync id, 0 to 255: directors of one cluster share it")
	f.Uint16Var(&d.MaxLen, "sync-maxlen", 0, "largest sync message, UDP payload bytes (default: from the MTU)")
	f.StringVar(&group, "mcast-group", "", "IPv4 or IPv6 multicast group (default 224.0.0.81)")
	f.Uint16Var(&d.Port, "mcast-port", 0, "UDP port (default 8848)")
	f.Uint8Var(&d.TTL, "mcast-ttl", 0, "multicast TTL (default 1)")
	_ = start.MarkFlagRequired("mcast-interface")

	stop := &cobra.Command{
		Use:   "stop [master|backup]",
		Short: "Stop a sync daemon, or every one (ipvsadm --stop-daemon)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			states := []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup}
			if len(args) == 1 {
				st, err := ipvs.ParseSyncState(args[0])
				if err != nil {
					return err
				}
				states = []ipvs.SyncState{st}
			}
			return call(cmd, func(ctx context.Context, k syncKernel) error {
				stopped := 0
				for _, st := range states {
					err := k.StopSync(ctx, st)
					if errors.Is(err, syscall.ESRCH) {
						if len(states) == 1 {
							return fmt.Errorf("no %s sync daemon is running", st)
						}
						continue
					}
					if err != nil {
						return err
					}
					stopped++
					fmt.Fprintf(cmd.OutOrStdout(), "stopped the %s sync daemon\n", st)
				}
				if stopped == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "no sync daemon was running")
				}
				return nil
			})
		},
	}

	status := &cobra.Command{
		Use:   "status",
		Short: `Print the running sync daemons as "ipvsadm --list --daemon" does`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd, func(ctx context.Context, k syncKernel) error {
				ds, err := k.SyncDaemons(ctx)
				if err != nil {
					return err
				}
				return ipvsadm.WriteDaemons(cmd.OutOrStdout(), ds)
			})
		},
	}
	cmd.AddCommand(start, stop, status)
	return cmd
}
