package cli

import "github.com/spf13/cobra"

// newDirectorCmd is replaced when the director role lands.
func newDirectorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "director",
		Short: "Program kernel IPVS from a YAML file and keep it that way",
		RunE:  func(*cobra.Command, []string) error { return notBuilt("the director role") },
	}
}
