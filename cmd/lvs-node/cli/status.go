package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/rsagent"
)

// exitNotReady is the status of "lvs-node status" when a daemon answers
// but is not ready (LSB's "not running" for a service still starting).
const exitNotReady = 3

// statusTimeout bounds one status request.
const statusTimeout = 30 * time.Second

// roleStatus is the answer of one daemon.
type roleStatus struct {
	Director   *director.Status `json:"director,omitempty"`
	Realserver *rsagent.Status  `json:"realserver,omitempty"`
}

func newStatusCmd() *cobra.Command {
	var (
		role, cfgPath, socket string
		asJSON                bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what the running director or real-server daemon is doing",
		Long: `status asks the running daemons over their control sockets (listen.control of
their configuration files, or --socket) and prints what they report; it changes
nothing.

The director shows each virtual service with its real servers: health, the
configured and the effective weight with the reason they differ (a failed check,
a drain, the agent's admin state, the reported load), the capacity the agent
reports, connections, and the last change of the real server's inputs and when.
The real server shows its VIPs, sysctls, load agent, load sources, admin state
and eBPF TOA.

Without --role every role whose daemon answers is shown. --json prints the same
as JSON, {"director": {...}, "realserver": {...}}; its field names are stable.
The exit status is 0 when every daemon shown is ready, 3 when one answers but
is not ready (its configuration not applied, or the kernel not in sync), and 1
when none answers.`,
		Example: `  lvs-node status
  lvs-node status --role director --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			roles := []string{roleDirector, roleRealserver}
			switch role {
			case "":
				if socket != "" || cfgPath != "" {
					return errors.New("--socket and --config need --role")
				}
			case roleDirector, roleRealserver:
				roles = []string{role}
			default:
				return fmt.Errorf("--role: want director or realserver, got %q", role)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), statusTimeout)
			defer cancel()
			var out roleStatus
			var errs []error
			for _, r := range roles {
				sock, err := statusSocket(r, cfgPath, socket, cmd.ErrOrStderr())
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if role == "" {
					if _, err := os.Stat(sock); err != nil {
						continue // that role does not run here
					}
				}
				switch r {
				case roleDirector:
					out.Director, err = director.RequestStatus(ctx, sock)
				case roleRealserver:
					out.Realserver, err = rsagent.RequestStatus(ctx, sock)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", r, err))
				}
			}
			if out.Director == nil && out.Realserver == nil {
				if len(errs) == 0 {
					return fmt.Errorf("no lvs-node daemon runs here: neither %s nor %s exists", director.DefaultControl, rsagent.DefaultControl)
				}
				return errors.Join(errs...)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				p := newPainter(w)
				if out.Director != nil {
					renderDirector(w, p, out.Director, time.Now())
				}
				if out.Realserver != nil {
					if out.Director != nil {
						fmt.Fprintln(w)
					}
					fmt.Fprintf(w, "%s\n%s", p.bold("real server"), out.Realserver.Text())
				}
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			if d := out.Director; d != nil && !d.Ready {
				return &exitError{code: exitNotReady, err: fmt.Errorf("the director is not ready: %s", d.NotReady)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "director or realserver (default: every role that runs here)")
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "configuration file naming the control socket (default: the role's file in /etc/lvs-node)")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket (default: listen.control of the configuration)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

// statusSocket finds the control socket of role: socket when given, else
// listen.control of the role's configuration file when it can be read,
// else the role's default.
func statusSocket(role, cfgPath, socket string, stderr io.Writer) (string, error) {
	if socket != "" {
		return socket, nil
	}
	explicit := cfgPath != ""
	switch role {
	case roleDirector:
		if !explicit {
			cfgPath = defaultDirectorConfig
		}
		if _, err := os.Stat(cfgPath); err != nil && !explicit {
			return director.DefaultControl, nil
		}
		cfg, err := loadDirectorConfig(cfgPath, stderr)
		if err != nil {
			return "", err
		}
		if cfg.Listen.ControlPath() == "" {
			return "", errors.New("listen.control is off in the director's configuration: it serves no status")
		}
		return cfg.Listen.ControlPath(), nil
	default:
		if !explicit {
			cfgPath = defaultRealserverConfig
		}
		if _, err := os.Stat(cfgPath); err != nil && !explicit {
			return rsagent.DefaultControl, nil
		}
		return realserverSocket(cfgPath, "", stderr)
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
