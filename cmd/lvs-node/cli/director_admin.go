package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvs-node/lvs-node/director"
)

// newDirectorOverrideCmds builds "lvs-node director drain|ready".
func newDirectorOverrideCmds() []*cobra.Command {
	var cmds []*cobra.Command
	for _, drain := range []bool{true, false} {
		var path, socket, service string
		use, short, long := "drain", "Drain real servers: weight 0, established connections finish",
			`drain sets the weight of every real server at ADDRESS (and PORT, when given) to 0,
in every virtual service or in --service NAME only: connections already open go
on, new ones go to the other real servers.`
		if !drain {
			use, short, long = "ready", "Lift the operator's drain of real servers",
				`ready gives the real servers at ADDRESS (and PORT) the weight their other inputs
give them (health, the agent's load and admin state) again.`
		}
		cmd := &cobra.Command{
			Use:   use + " ADDRESS[:PORT]",
			Short: short,
			Long: long + `

The running director records the operator's drain in its state directory
before applying it, so it survives resyncs, reloads and restarts until
"lvs-node director ready" lifts it. The command talks to the director's local
control socket (listen.control, or --socket) only.`,
			Example: "  lvs-node director " + use + " 10.0.0.11\n  lvs-node director " + use + " 10.0.0.11:80 --service web",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if socket == "" {
					cfg, err := loadDirectorConfig(path, cmd.ErrOrStderr())
					if err != nil {
						return err
					}
					if socket = cfg.Listen.ControlPath(); socket == "" {
						return errors.New("listen.control is off in the configuration: the director serves no control socket")
					}
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
				defer cancel()
				lines, err := director.RequestOverride(ctx, socket, drain, args[0], service)
				if err != nil {
					return err
				}
				for _, l := range lines {
					fmt.Fprintln(cmd.OutOrStdout(), l)
				}
				return nil
			},
		}
		cmd.Flags().StringVarP(&path, "config", "c", defaultDirectorConfig, "configuration file (names the control socket)")
		cmd.Flags().StringVar(&socket, "socket", "", "control socket (default: listen.control of the configuration)")
		cmd.Flags().StringVar(&service, "service", "", "only the real servers of this virtual service")
		cmds = append(cmds, cmd)
	}
	return cmds
}
