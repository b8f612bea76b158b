package cli

import "github.com/spf13/cobra"

// newRealserverCmd is replaced when the real-server role lands.
func newRealserverCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "realserver",
		Short: "Bind VIPs, suppress ARP and set up tunnels and NAT routes on a real server",
		RunE:  func(*cobra.Command, []string) error { return notBuilt("the real-server role") },
	}
}
