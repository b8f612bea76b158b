package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// Command returns the whole command tree, with cobra's completion command,
// for generating manual pages and shell completion at build time
// (packaging/gen). Running it is Main's job.
func Command(stdout, stderr io.Writer) *cobra.Command {
	root := newRoot(stdout, stderr)
	root.InitDefaultCompletionCmd()
	return root
}
