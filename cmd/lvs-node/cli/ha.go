package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/internal/control"
)

// haTimeout bounds one HA command: keepalived's notify hooks wait for it.
const haTimeout = 20 * time.Second

// newDirectorHACmd builds "lvs-node director ha master|backup|fault|drain|ready|status".
func newDirectorHACmd() *cobra.Command {
	var path, socket string
	cmd := &cobra.Command{
		Use:   "ha",
		Short: "Tell the running director its HA role, drain it, or show its HA state",
		Long: `keepalived's notify hooks run "lvs-node director ha master|backup|fault": the
running director takes the role over its control socket (a state change, not
configuration: the IPVS table stays the same on both directors), saves it, and
moves the kernel's connection-sync daemons with it: a master sends its
connections and receives its peer's, a backup or faulty director receives.
The command returns once the sync daemons follow.

"lvs-node director ha drain" withdraws every VIP the director announces
through BIRD (active-active behind ECMP), until "lvs-node director ha ready";
the drain survives restarts. "status" shows the role, the sync daemons, BIRD
and the announced and withheld VIPs, with every problem found.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVarP(&path, "config", "c", defaultDirectorConfig, "configuration file (names the control socket)")
	cmd.PersistentFlags().StringVar(&socket, "socket", "", "control socket (default: listen.control of the configuration)")
	for _, sub := range []struct{ name, short string }{
		{"master", "This director became the VRRP master (keepalived notify_master)"},
		{"backup", "This director became a VRRP backup (keepalived notify_backup)"},
		{"fault", "This director is faulty (keepalived notify_fault)"},
		{"drain", "Withdraw every VIP this director announces, until ha ready"},
		{"ready", "Announce the VIPs again after ha drain"},
		{"status", "Show the role, the sync daemons and the announcement"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   sub.name,
			Short: sub.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return haCall(cmd.Context(), path, socket, sub.name, cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		})
	}
	return cmd
}

// haCall sends "ha VERB" to the running director and prints its state.
func haCall(ctx context.Context, path, socket, verb string, out, stderr io.Writer) error {
	if socket == "" {
		cfg, err := loadDirectorConfig(path, stderr)
		if err != nil {
			return err
		}
		socket = cfg.Listen.ControlPath()
		if socket == "" {
			return errors.New("listen.control is off in the configuration: the HA commands need the control socket")
		}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, haTimeout)
	defer cancel()
	body, err := control.Call(ctx, socket, "ha "+verb)
	var r *control.Refusal
	if errors.As(err, &r) {
		return fmt.Errorf("ha %s: the director refused: %s", verb, r.Problems)
	}
	if err != nil {
		return fmt.Errorf("ha %s: is lvs-node director running? %w", verb, err)
	}
	_, err = io.WriteString(out, body)
	return err
}

// haCheckProblems prints what keeps the HA settings of a valid director
// configuration from working (BIRD not answering, keepalived not
// running...) as warnings: the file itself is valid.
func haCheckProblems(ctx context.Context, cfg *director.Config, stderr io.Writer) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, haTimeout)
	defer cancel()
	for _, p := range director.HAProblems(ctx, cfg) {
		fmt.Fprintf(stderr, "warning: %s\n", p)
	}
}
