package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvs-node/lvs-node/director/importer"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvsadm"
)

// ipvsReader is what "lvs-node ipvs" needs from the kernel.
type ipvsReader interface {
	Table(ctx context.Context) (*ipvs.Table, error)
	Info(ctx context.Context) (ipvs.Info, error)
	Close() error
}

// ipvsOpener opens the kernel's IPVS (or a fake in tests).
type ipvsOpener func() (ipvsReader, error)

func openKernelIPVS() (ipvsReader, error) {
	c, err := ipvs.Open()
	if err != nil {
		return nil, fmt.Errorf("open IPVS: %w", err)
	}
	return c, nil
}

// ipvsReadTimeout bounds one listing.
const ipvsReadTimeout = 2 * time.Minute

// newIPVSCmd builds "lvs-node ipvs list|save", the ipvsadm-compatible view
// of the kernel table.
func newIPVSCmd() *cobra.Command {
	cmd := newIPVSCmdWith(openKernelIPVS, openKernelAdmin, ipvsadm.ConnFile)
	cmd.AddCommand(newIPVSSyncCmd(openKernelSync))
	return cmd
}

func newIPVSCmdWith(open ipvsOpener, admin adminOpener, connFile string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ipvs",
		Short: "Show the kernel IPVS table in ipvsadm's formats",
		Long: `lvs-node ipvs list prints the kernel's IPVS table exactly as "ipvsadm -Ln" does
(and its --stats, --rate, --thresholds, --persistent-conn and --tun-info
layouts), or as JSON; with -t, -u, --sctp-service or -f one service only, and
with -c the connections ("ipvsadm -Lnc"). lvs-node ipvs save prints the table
in the "ipvsadm-save -n" format, which "ipvsadm -R" reads back. lvs-node ipvs
zero resets counters (ipvsadm -Z); lvs-node ipvs timeout shows or sets the
connection timeouts (ipvsadm -L --timeout, ipvsadm --set).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var (
		stats, rate, thresholds, persist, tunInfo, exact, noSort, asJSON bool
		sel                                                              *listSelectors
	)
	list := &cobra.Command{
		Use:   "list",
		Short: `Print the table as "ipvsadm -Ln" does`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := ipvsadm.ListOptions{Exact: exact, NoSort: noSort}
			n := 0
			for _, f := range []struct {
				on     bool
				format ipvsadm.Format
			}{{stats, ipvsadm.FormatStats}, {rate, ipvsadm.FormatRate}, {thresholds, ipvsadm.FormatThresholds},
				{persist, ipvsadm.FormatPersistentConn}, {tunInfo, ipvsadm.FormatTunInfo}} {
				if f.on {
					n++
					opts.Format = f.format
				}
			}
			if asJSON {
				n++
			}
			if n > 1 {
				return errors.New("choose one of --stats, --rate, --thresholds, --persistent-conn, --tun-info and --json")
			}
			if done, err := sel.list(cmd, open, connFile, opts, asJSON); done {
				return err
			}
			t, info, err := readIPVS(cmd.Context(), open, true)
			if err != nil {
				return err
			}
			opts.Info = info
			if asJSON {
				return ipvsadm.WriteJSON(cmd.OutOrStdout(), t, opts.Info)
			}
			return ipvsadm.WriteList(cmd.OutOrStdout(), t, opts)
		},
	}
	fl := list.Flags()
	fl.BoolVar(&stats, "stats", false, "show packet and byte counters (ipvsadm --stats)")
	fl.BoolVar(&rate, "rate", false, "show rates (ipvsadm --rate)")
	fl.BoolVar(&thresholds, "thresholds", false, "show connection thresholds (ipvsadm --thresholds)")
	fl.BoolVar(&persist, "persistent-conn", false, "show persistent connections (ipvsadm --persistent-conn)")
	fl.BoolVar(&tunInfo, "tun-info", false, "show tunnel types (ipvsadm --tun-info)")
	fl.BoolVar(&exact, "exact", false, "print counters in full (ipvsadm --exact)")
	fl.BoolVar(&noSort, "nosort", false, "keep the kernel's order (ipvsadm --nosort)")
	fl.BoolVar(&asJSON, "json", false, "print JSON (fields documented in internal/ipvsadm.JSONTable)")
	fl.BoolP("numeric", "n", true, "accepted for ipvsadm habits; output is always numeric")
	sel = addListSelectors(fl)

	save := &cobra.Command{
		Use:   "save",
		Short: `Print the table as "ipvsadm-save -n" does, for "ipvsadm -R"`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, _, err := readIPVS(cmd.Context(), open, false)
			if err != nil {
				return err
			}
			return ipvsadm.WriteSave(cmd.OutOrStdout(), t)
		},
	}
	save.Flags().BoolP("numeric", "n", true, "accepted for ipvsadm habits; output is always numeric")
	cmd.AddCommand(list, save, newZeroCmd(admin), newTimeoutCmd(admin))
	return cmd
}

func readIPVS(ctx context.Context, open ipvsOpener, withInfo bool) (*ipvs.Table, ipvs.Info, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, ipvsReadTimeout)
	defer cancel()
	c, err := open()
	if err != nil {
		return nil, ipvs.Info{}, err
	}
	defer c.Close()
	var info ipvs.Info
	if withInfo {
		ki, err := c.Info(ctx)
		if err != nil {
			return nil, ipvs.Info{}, fmt.Errorf("read IPVS version: %w", err)
		}
		info = ipvs.Info{Version: ki.Version, ConnTableSize: ki.ConnTableSize}
	}
	t, err := c.Table(ctx)
	if err != nil {
		return nil, ipvs.Info{}, fmt.Errorf("read IPVS table: %w", err)
	}
	return t, info, nil
}

// newImportCmd builds "lvs-node import ipvsadm|keepalived FILE".
func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Translate ipvsadm-save output, ipvsadm scripts or keepalived.conf into a director.yaml",
		Long: `lvs-node import prints, on standard output, a director.yaml equivalent to the
given ipvsadm rules or script, or keepalived configuration, and a summary line
on standard error. A script is read as run with "start", without running
anything. What cannot be mapped (VRRP, sync daemons, ...) is listed as YAML
comments. FILE "-" reads standard input. Check the result with
"lvs-node check --config FILE" before use.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var opts importer.Options
	add := func(use, short string, conv func(io.Reader, string, importer.Options) (*importer.Result, error)) *cobra.Command {
		c := &cobra.Command{
			Use:   use + " FILE",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runImport(cmd, args[0], opts, conv)
			},
		}
		cmd.AddCommand(c)
		return c
	}
	add("ipvsadm", "Import ipvsadm-save output or a script that runs ipvsadm", importer.FromIpvsadm)
	ka := add("keepalived", "Import the virtual servers of a keepalived.conf and the files it includes", importer.FromKeepalived)
	ka.Flags().StringVar(&opts.ConfigID, "config-id", "", "keepalived's -i: read lines starting @ID as the director with this id does")
	return cmd
}

func runImport(cmd *cobra.Command, file string, opts importer.Options, conv func(io.Reader, string, importer.Options) (*importer.Result, error)) error {
	in, name := cmd.InOrStdin(), "stdin"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("open %s: %w", file, err)
		}
		defer f.Close()
		in, name = f, file
	}
	res, err := conv(in, name, opts)
	if err != nil {
		return err
	}
	if _, err := cmd.OutOrStdout().Write(res.YAML); err != nil {
		return err
	}
	_, err = fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", name, res.Summary())
	return err
}
