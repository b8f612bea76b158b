package cli

import (
	"fmt"
	"io"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/director/fullnat"
	"github.com/lvs-node/lvs-node/internal/config"
)

// checkFullNAT refuses a configuration with full-NAT services on a kernel
// without what full-NAT needs, naming each missing piece at the key that
// asks for full-NAT. It returns a note for the summary line. Without the
// privileges to probe (root), it says so on stderr and refuses nothing.
func checkFullNAT(cfg *director.Config, doc *config.Doc, stderr io.Writer) (string, error) {
	paths := cfg.FullNATPaths()
	if len(paths) == 0 {
		return "", nil
	}
	needs := fullnat.Probe()
	if len(needs) == 1 && needs[0].Err != nil {
		fmt.Fprintf(stderr, "note: the kernel's support of full-NAT was not checked: %v\n", needs[0].Err)
		return "", nil
	}
	var errs config.Errors
	hook := ""
	for _, n := range needs {
		if n.Err != nil {
			errs = append(errs, doc.Errorf(paths[0], "fullnat needs %s, which this kernel lacks: %v", n.What, n.Err))
		}
		if n.Detail == fullnat.ModeTCX || n.Detail == fullnat.ModeTC {
			hook = n.Detail
		}
	}
	if len(errs) > 0 {
		return "", errs
	}
	return fmt.Sprintf("full-NAT supported by this kernel (%s)", hook), nil
}
