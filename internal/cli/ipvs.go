package cli

import "github.com/spf13/cobra"

// newIPVSCmd and newImportCmd are replaced when ipvsadm compatibility lands.
func newIPVSCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ipvs",
		Short: "Show the kernel IPVS table in ipvsadm's layout",
		RunE:  func(*cobra.Command, []string) error { return notBuilt("the ipvsadm-compatible view") },
	}
}

func newImportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import",
		Short: "Translate ipvsadm-save output or keepalived.conf into a director.yaml",
		RunE:  func(*cobra.Command, []string) error { return notBuilt("importing") },
	}
}
