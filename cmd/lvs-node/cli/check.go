package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	yaml "go.yaml.in/yaml/v3"

	"github.com/lvs-node/lvs-node/rsagent"
)

// Roles a configuration file can be for.
const (
	roleDirector   = "director"
	roleRealserver = "realserver"
)

// detectRole names the role of a configuration file from its top-level
// keys: realserver for a realserver: section, director for director: or
// virtual_services:. The keys are read from the lines that start in the
// first column, so a large file is not parsed twice; a file written in
// flow style is parsed to find them.
func detectRole(path string, data []byte) (string, error) {
	top := map[string]bool{}
	for line := range strings.SplitSeq(string(data), "\n") {
		if line == "" || strings.ContainsRune(" \t#-{[.%", rune(line[0])) {
			continue
		}
		if key, _, ok := strings.Cut(line, ":"); ok {
			top[strings.Trim(strings.TrimSpace(key), `"'`)] = true
		}
	}
	if len(top) == 0 {
		var parsed map[string]yaml.Node
		if err := yaml.Unmarshal(data, &parsed); err != nil {
			// Let the strict loader report the syntax error with its position.
			return roleDirector, nil
		}
		for k := range parsed {
			top[k] = true
		}
	}
	rs, d1, d2 := top["realserver"], top["director"], top["virtual_services"]
	switch {
	case rs && (d1 || d2):
		return "", fmt.Errorf("%s: holds both a realserver section and director settings: use one file per role", path)
	case rs:
		return roleRealserver, nil
	case d1 || d2:
		return roleDirector, nil
	}
	return "", fmt.Errorf("%s: cannot tell the role: a director file has virtual_services (and director), a real-server file has realserver", path)
}

func newCheckCmd() *cobra.Command {
	var path, root string
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate a configuration file and report every error with file:line:column",
		Long: `check reads a director or real-server configuration, detects its role from the
top-level keys, and reports every problem at once, each with file:line:column
and the key path. It changes nothing on the system. The exit status is 0 only
for a valid file, 2 for an invalid one (as for lvs-node director and
realserver given a bad file).

A director file is also checked against the kernel of the host it runs on:
every scheduler must be one this kernel can load (loaded, built in, or in
/lib/modules/$(uname -r)/modules.dep), and tunnel types other than ipip need
Linux 5.3. Run it on the director itself; a host without /lib/modules for its
kernel is not checked, and the summary line says so. Remarks that are not
errors (an IPv6 VIP bound on lo, which neighbour discovery does not answer)
are printed as notes.`,
		Example: `  lvs-node check --config /etc/lvs-node/director.yaml
  lvs-node check --config /etc/lvs-node/realserver.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return fmt.Errorf("--config FILE is required")
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("read config: %w", err)
			}
			role, err := detectRole(path, data)
			if err != nil {
				return err
			}
			var summary string
			switch role {
			case roleDirector:
				c, doc, lerr := loadDirectorForHost(path, root, cmd.ErrOrStderr(), func(n string) { fmt.Fprintln(cmd.OutOrStdout(), "note: "+n) })
				if lerr != nil {
					return lerr
				}
				haCheckProblems(cmd.Context(), c, cmd.ErrOrStderr())
				summary = fmt.Sprintf("%d virtual services; %s", len(c.VirtualServices), kernelSummary(root))
				if note, ferr := checkFullNAT(c, doc, cmd.ErrOrStderr()); ferr != nil || note != "" {
					err, summary = ferr, summary+"; "+note
				}
			case roleRealserver:
				c, _, lerr := rsagent.LoadConfig(path)
				err = lerr
				if err == nil {
					summary = fmt.Sprintf("%d VIPs", len(c.Realserver.VIPs))
				}
			}
			if err != nil {
				return badConfig(path, err, cmd.ErrOrStderr())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid %s configuration (%s)\n", path, role, summary)
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file to check")
	cmd.Flags().StringVar(&root, "kernel-root", kernelRoot, "root of the /proc, /sys and /lib/modules trees the director file is checked against (for checking against a copy)")
	_ = cmd.Flags().MarkHidden("kernel-root")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	return cmd
}
