package cli

import "github.com/spf13/cobra"

// newCheckCmd is completed when both roles' schemas land.
func newCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Validate a configuration file and report every error with file:line:column",
		RunE:  func(*cobra.Command, []string) error { return notBuilt("config checking") },
	}
}
