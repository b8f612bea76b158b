package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvs-node/lvs-node/director"
)

const defaultDirectorConfig = "/etc/lvs-node/director.yaml"

// onceTimeout bounds the one reconciliation of --once, --dry-run and
// down (a table dump and a batch), as the daemon bounds each of its own:
// a kernel that stops answering ends the command with an error.
const onceTimeout = 5 * time.Minute

func newDirectorCmd() *cobra.Command {
	var (
		path   string
		once   bool
		dryRun bool
		logs   logFlags
	)
	cmd := &cobra.Command{
		Use:   "director",
		Short: "Program kernel IPVS from a YAML file and keep it that way",
		Long: `lvs-node director makes the kernel's IPVS table match the configuration file,
then repairs drift every resync_interval. SIGHUP or "lvs-node director reload"
re-reads the file; a file that does not validate changes nothing.

Services lvs-node did not create and that the file does not name are never
touched; a service of the same key as one the file names is taken over (edited
in place, never re-created) once a reconciliation succeeds. Stopping the daemon
leaves the IPVS table in place, so a restart drops no connection; "lvs-node
director down" removes what lvs-node owns.

The file is checked against this host's kernel first (see lvs-node check): a
scheduler it cannot load refuses the start, --once and any later reload. One
process at a time works on a state directory: a second daemon, --once or down
on the same one is refused with the holder's pid and command.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if once {
				collectLate()
			}
			// A file this kernel cannot carry out is refused before
			// anything changes, as at reload.
			loader := director.NewLoader(path)
			cfg, _, err := loadDirectorWith(loader, path, kernelRoot, cmd.ErrOrStderr(), func(n string) { log.Warn("note", "note", n) })
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if dryRun || once {
				// One reconciliation, bounded like the daemon's.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, onceTimeout)
				defer cancel()
			}
			if dryRun {
				return directorDryRun(ctx, cfg, cmd.OutOrStdout())
			}
			e, closeFn, err := director.OpenSystem(cfg, log)
			if err != nil {
				return err
			}
			defer closeFn()
			if once {
				if err := director.RestoreHealth(ctx, e, cfg, true, log); err != nil {
					return err
				}
				start := time.Now()
				ops, err := e.Apply(ctx, cfg)
				if err != nil {
					return fmt.Errorf("apply (%d changes made): %w", len(ops), err)
				}
				log.Info("applied", "changes", len(ops), "took", time.Since(start).Round(time.Millisecond))
				return nil
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			d := &director.Daemon{Path: path, Loader: loader, Engine: e, Log: log, Hup: hup}
			return d.Run(ctx, cfg)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", defaultDirectorConfig, "configuration file")
	cmd.Flags().BoolVar(&once, "once", false, "apply the configuration once and exit")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the planned changes as ipvsadm arguments and change nothing")
	logs.add(cmd.Flags())
	cmd.MarkFlagsMutuallyExclusive("once", "dry-run")
	cmd.AddCommand(newDirectorReloadCmd(), newDirectorDownCmd(), newDirectorHACmd())
	cmd.AddCommand(newDirectorOverrideCmds()...)
	return cmd
}

func newDirectorReloadCmd() *cobra.Command {
	var path, socket string
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Ask the running director to re-read its configuration file",
		Long: `reload validates the file first and reports every problem; the running director
then re-reads it through its control socket (listen.control). The socket only
triggers the reload: the daemon reads the file itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if socket == "" {
				cfg, _, err := loadDirectorForHost(path, kernelRoot, cmd.ErrOrStderr(), func(n string) { fmt.Fprintln(cmd.ErrOrStderr(), "note: "+n) })
				if err != nil {
					return err
				}
				socket = cfg.Listen.ControlPath()
				if socket == "" {
					return errors.New("listen.control is off in the configuration: send SIGHUP instead")
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			if err := director.RequestReload(ctx, socket); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "reloaded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", defaultDirectorConfig, "configuration file (validated, and names the control socket)")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket (default: listen.control of the configuration)")
	return cmd
}

func newDirectorDownCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the IPVS services, marks and VIPs lvs-node owns and restore sysctls",
		Long: `down deletes every virtual service lvs-node created or adopted (as recorded in
the state directory), its nftables table and bound VIPs, and restores the
sysctls it changed. Services it does not own are left alone. Stop the daemon
first, or it will put everything back at the next resync.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadDirectorConfig(path, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			e, closeFn, err := director.OpenSystem(cfg, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := context.WithTimeout(cmd.Context(), onceTimeout)
			defer cancel()
			ops, err := e.Down(ctx)
			for _, op := range ops {
				fmt.Fprintln(cmd.OutOrStdout(), director.FormatOp(op))
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", defaultDirectorConfig, "configuration file (names the state directory)")
	return cmd
}

// loadDirectorConfig loads path and prints every problem, one per line.
func loadDirectorConfig(path string, stderr io.Writer) (*director.Config, error) {
	cfg, _, err := director.LoadConfig(path)
	if err != nil {
		return nil, badConfig(path, err, stderr)
	}
	return cfg, nil
}

func directorDryRun(ctx context.Context, cfg *director.Config, out io.Writer) error {
	e, closeFn, err := director.OpenKernel(cfg)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := director.RestoreHealth(ctx, e, cfg, false, nil); err != nil {
		return err
	}
	ops, marks, err := e.Plan(ctx, cfg)
	if err != nil {
		return err
	}
	for _, op := range ops {
		fmt.Fprintln(out, director.FormatOp(op))
	}
	for _, m := range marks {
		ports := make([]string, len(m.Ports))
		for i, p := range m.Ports {
			ports[i] = fmt.Sprint(p)
		}
		fmt.Fprintf(out, "# nftables %s: mark %s to %s port %s with %#x, mask %#x (service %s)\n", cfg.Director.NFTable, m.Protocol, m.VIP, strings.Join(ports, ","), m.Mark, m.Mask, m.Name)
	}
	if len(ops) == 0 {
		fmt.Fprintln(out, "# the IPVS table already matches the configuration")
	}
	return nil
}
