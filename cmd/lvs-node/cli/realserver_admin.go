package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
	"github.com/lvs-node/lvs-node/rsagent"
)

// newRealserverAdminCmds builds "lvs-node realserver drain|ready|maint".
func newRealserverAdminCmds(cfgPath *string) []*cobra.Command {
	help := map[agentcheck.Admin][2]string{
		agentcheck.AdminDrain: {"Make the agent answer drain: no new connections, existing ones finish",
			"The director sets this real server's weight to 0: connections already open go on, new ones go to the other real servers. HAProxy does the same (DRAIN)."},
		agentcheck.AdminReady: {"Make the agent answer ready: undo drain or maint",
			"The director gives this real server its weight back (from the reported load)."},
		agentcheck.AdminMaint: {"Make the agent answer maint: out of service",
			"The director sets the weight to 0 (HAProxy puts the server in maintenance)."},
	}
	var cmds []*cobra.Command
	for _, a := range []agentcheck.Admin{agentcheck.AdminDrain, agentcheck.AdminReady, agentcheck.AdminMaint} {
		var socket string
		cmd := &cobra.Command{
			Use:   a.String(),
			Short: help[a][0],
			Long: help[a][1] + `

The running daemon changes the state its agent reports (realserver.agent) and
records it in state_dir first, so it survives a restart. The command talks
to the daemon's local control socket (listen.control, or --socket) only: no
state can be changed over the network.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				sock, err := realserverSocket(*cfgPath, socket, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
				defer cancel()
				out, err := rsagent.RequestAdmin(ctx, sock, a)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), out)
				return nil
			},
		}
		cmd.Flags().StringVar(&socket, "socket", "", "control socket (default: listen.control of the configuration)")
		cmds = append(cmds, cmd)
	}
	return cmds
}
