package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/rsagent"
)

const defaultRealserverConfig = "/etc/lvs-node/realserver.yaml"

// newRealserverCmd builds "lvs-node realserver" (the daemon) and its
// one-shot subcommands up and down.
func newRealserverCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "realserver",
		Short: "Bind VIPs, suppress ARP and set up tunnels and NAT routes on a real server",
		Long: `lvs-node realserver applies the real-server configuration and keeps it applied:
a VIP removed by hand, a sysctl changed or tunl0 set down is repaired and
logged. On SIGTERM or SIGINT it restores the host when restore_on_exit is
true (the default).

"lvs-node realserver up" and "down" do the same once, for hosts that want no
daemon. "status" and "reload" talk to the running daemon over its control
socket (listen.control). Every original value is recorded in state_dir before it is changed,
and down puts back exactly those values and removes only what lvs-node added.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRealserverDaemon(cmd, cfgPath)
		},
	}
	cmd.PersistentFlags().StringVarP(&cfgPath, "config", "c", defaultRealserverConfig, "real-server configuration file")
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

// configError gives configuration problems exit status 2.
func configError(err error) error {
	if config.AsErrors(err) != nil {
		return &exitError{code: 2, err: err}
	}
	return err
}

func openRealserver(cfgPath string, log *slog.Logger) (*rsagent.Agent, *rsagent.Config, func(), error) {
	cfg, doc, err := rsagent.LoadConfig(cfgPath)
	if err != nil {
		return nil, nil, nil, configError(err)
	}
	k, err := rsagent.NewNetlinkKernel()
	if err != nil {
		return nil, nil, nil, err
	}
	rec, err := rsagent.OpenSysctls(cfg)
	if err != nil {
		k.Close()
		return nil, nil, nil, err
	}
	a, err := rsagent.New(cfg, doc, k, rec, log)
	if err != nil {
		k.Close()
		return nil, nil, nil, err
	}
	return a, cfg, k.Close, nil
}

func runRealserverOnce(cmd *cobra.Command, cfgPath string, up bool) error {
	a, _, closeFn, err := openRealserver(cfgPath, nil)
	if err != nil {
		return err
	}
	defer closeFn()
	var changes []string
	if up {
		changes, err = a.Up()
	} else {
		changes, err = a.Down()
	}
	out := cmd.OutOrStdout()
	for _, c := range changes {
		fmt.Fprintln(out, c)
	}
	if err != nil {
		return configError(err)
	}
	fmt.Fprintf(out, "%d changes\n", len(changes))
	return nil
}

func runRealserverDaemon(cmd *cobra.Command, cfgPath string) error {
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	a, cfg, closeFn, err := openRealserver(cfgPath, log)
	if err != nil {
		return err
	}
	defer closeFn()
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	m := rsagent.NewMetrics()
	if addr := cfg.Listen.Metrics; addr != "" {
		srv, err := serveMetrics(addr, m, log)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	return configError(a.Run(ctx, rsagent.RunOptions{Metrics: m, ConfigPath: cfgPath, Control: cfg.Listen.Control}))
}

// realserverSocket is --socket, or listen.control of the configuration.
func realserverSocket(cfgPath, socket string) (string, error) {
	if socket != "" {
		return socket, nil
	}
	cfg, _, err := rsagent.LoadConfig(cfgPath)
	if err != nil {
		return "", configError(err)
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
			sock, err := realserverSocket(*cfgPath, socket)
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
				return configError(err)
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

func serveMetrics(addr string, m *rsagent.Metrics, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen.metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return srv, nil
}
