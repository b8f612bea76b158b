package cli

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Build information, set with -ldflags "-X ...cli.version=... -X ...cli.commit=...".
// They are written only by the linker.
var (
	version = "dev"
	commit  = ""
)

// Main runs the command line with args and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "lvs-node: %v\n", err)
	return exitCode(err)
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "lvs-node",
		Short: "Companion for Linux Virtual Server (IPVS) directors and real servers",
		Long: `lvs-node programs kernel IPVS on load balancers from a declarative YAML file
(lvs-node director) and prepares real servers behind them: VIPs, ARP
suppression, tunnels and NAT routes (lvs-node realserver).

Start with "lvs-node check --config FILE" to validate a configuration.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newDirectorCmd(),
		newRealserverCmd(),
		newCheckCmd(),
		newStatusCmd(),
		newIPVSCmd(),
		newImportCmd(),
		newToaCmd(),
		newVersionCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, goVersion := commit, "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVersion = bi.GoVersion
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" && c == "" {
						c = s.Value
					}
				}
			}
			if c == "" {
				c = "unknown"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lvs-node %s\ncommit: %s\ngo: %s\n", version, c, goVersion)
			return nil
		},
	}
}
