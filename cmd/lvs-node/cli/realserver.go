package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvs-node/lvs-node/internal/hostnet"
	"github.com/lvs-node/lvs-node/internal/state"
	"github.com/lvs-node/lvs-node/rsagent"
)

const defaultRealserverConfig = "/etc/lvs-node/realserver.yaml"

// newRealserverCmd builds "lvs-node realserver" (the daemon) and its
// one-shot subcommands up and down.
func newRealserverCmd() *cobra.Command {
	var cfgPath string
	var logs logFlags
	cmd := &cobra.Command{
		Use:   "realserver",
		Short: "Bind VIPs, suppress ARP and set up tunnels and NAT routes on a real server",
		Long: `lvs-node realserver applies the real-server configuration and keeps it applied:
a VIP removed by hand, a sysctl changed or tunl0 set down is repaired and
logged. SIGTERM or SIGINT stops it and leaves the host serving, so a
restart or an upgrade drops no traffic: the restarted daemon adopts what it
finds. "lvs-node realserver down" (and package removal) restores the host;
restore_on_exit: true makes stopping restore it too.

"lvs-node realserver up" and "down" do the same once, for hosts that want no
daemon. "status" and "reload" talk to the running daemon over its control
socket (listen.control). Every original value is recorded in state_dir before it is changed,
and down puts back exactly those values and removes only what lvs-node added.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRealserverDaemon(cmd, cfgPath, &logs)
		},
	}
	cmd.PersistentFlags().StringVarP(&cfgPath, "config", "c", defaultRealserverConfig, "real-server configuration file")
	logs.add(cmd.Flags())
	cmd.AddCommand(
		&cobra.Command{
			Use:   "up",
			Short: "Apply the configuration once and exit",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runRealserverOnce(cmd, cfgPath, true)
			},
		},
		newRealserverStatusCmd(&cfgPath),
		newRealserverReloadCmd(&cfgPath),
		&cobra.Command{
			Use:   "down",
			Short: "Undo everything lvs-node realserver changed and exit",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runRealserverOnce(cmd, cfgPath, false)
			},
		},
	)
	cmd.AddCommand(newRealserverAdminCmds(&cfgPath)...)
	return cmd
}

func openRealserver(cfgPath string, log *slog.Logger, stderr io.Writer) (*rsagent.Agent, *rsagent.Config, func(), error) {
	cfg, doc, err := rsagent.LoadConfig(cfgPath)
	if err != nil {
		return nil, nil, nil, badConfig(cfgPath, err, stderr)
	}
	// One process at a time changes the real server's records.
	lock, err := state.TryLock(cfg.Realserver.StateDir, "realserver")
	if err != nil {
		return nil, nil, nil, err
	}
	k, err := hostnet.NewNetlinkKernel()
	if err != nil {
		lock.Release()
		return nil, nil, nil, err
	}
	closeAll := func() { k.Close(); lock.Release() }
	rec, err := rsagent.OpenSysctls(cfg)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	a, err := rsagent.New(cfg, doc, rsagent.Deps{Kernel: k, Sysctls: rec, Log: log})
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return a, cfg, closeAll, nil
}

func runRealserverOnce(cmd *cobra.Command, cfgPath string, up bool) error {
	a, _, closeFn, err := openRealserver(cfgPath, nil, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer closeFn()
	var changes, tc []string
	var terr error
	if up {
		changes, err = a.Up()
		if err == nil {
			tc, terr = a.ApplyTOA(rsagent.NewTOAHost())
		}
	} else {
		changes, err = a.Down()
		tc, terr = a.RemoveTOA(rsagent.NewTOAHost())
	}
	changes = append(changes, tc...)
	out := cmd.OutOrStdout()
	for _, c := range changes {
		fmt.Fprintln(out, c)
	}
	if err = errors.Join(err, terr); err != nil {
		return badConfig(cfgPath, err, cmd.ErrOrStderr())
	}
	fmt.Fprintf(out, "%d changes\n", len(changes))
	return nil
}

func runRealserverDaemon(cmd *cobra.Command, cfgPath string, logs *logFlags) error {
	log, err := logs.logger(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	a, cfg, closeFn, err := openRealserver(cfgPath, log, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer closeFn()
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return badConfig(cfgPath, a.Run(ctx, rsagent.RunOptions{ConfigPath: cfgPath, Control: cfg.Listen.Control, MetricsAddr: cfg.Listen.Metrics,
		TOA: rsagent.NewTOAHost()}), cmd.ErrOrStderr())
}

// realserverSocket is --socket, or listen.control of the configuration.
func realserverSocket(cfgPath, socket string, stderr io.Writer) (string, error) {
	if socket != "" {
		return socket, nil
	}
	cfg, _, err := rsagent.LoadConfig(cfgPath)
	if err != nil {
		return "", badConfig(cfgPath, err, stderr)
	}
	if cfg.Listen.Control == "" {
		return "", errors.New("listen.control is not set in the configuration: the daemon serves no control socket")
	}
	return cfg.Listen.Control, nil
}

func newRealserverStatusCmd(cfgPath *string) *cobra.Command {
	var socket string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what the running daemon has applied",
		Long: `status asks the running daemon on its control socket (listen.control, or
--socket) what is applied: each VIP and where it is bound, every sysctl it set
with the recorded original, what down would remove or put back, and the
repairs so far. It changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sock, err := realserverSocket(*cfgPath, socket, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			st, err := rsagent.RequestStatus(ctx, sock)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			fmt.Fprint(cmd.OutOrStdout(), st.Text())
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "control socket (default: listen.control of the configuration)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func newRealserverReloadCmd(cfgPath *string) *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Ask the running daemon to re-read its configuration file",
		Long: `reload validates the file first and reports every problem; the running daemon
then re-reads its own file through its control socket (listen.control). The
socket only triggers the reload. A file that does not validate, or that the
host refuses, changes nothing and the previous configuration stays in effect.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The daemon reads the file itself; checking it here first
			// reports every problem with its position.
			cfg, _, err := rsagent.LoadConfig(*cfgPath)
			if err != nil {
				return badConfig(*cfgPath, err, cmd.ErrOrStderr())
			}
			if socket == "" {
				socket = cfg.Listen.Control
			}
			if socket == "" {
				return errors.New("listen.control is not set in the configuration: the daemon serves no control socket")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			changes, err := rsagent.RequestReload(ctx, socket)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, c := range changes {
				fmt.Fprintln(out, c)
			}
			fmt.Fprintf(out, "reloaded, %d changes\n", len(changes))
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "control socket (default: listen.control of the configuration, which is validated first)")
	return cmd
}
