package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/lvs-node/lvs-node/rsagent"
	"github.com/lvs-node/lvs-node/toa"
)

// newToaCmd builds "lvs-node toa": eBPF TOA on real servers and tooling
// for sites that run the TOA kernel modules.
func newToaCmd() *cobra.Command {
	var opts toa.Options
	cmd := &cobra.Command{
		Use:   "toa",
		Short: "TCP Option Address (TOA): real client addresses behind full-NAT balancers",
		Long: `lvs-node toa reveals the client address that full-NAT balancers (DPVS, Alibaba
LVS, cloud load balancers) carry in a TCP option to unmodified applications,
with eBPF programs attached to a cgroup v2 (kernel 5.10+, any architecture):
accept() and getpeername() return the client, IPv4 clients of dual-stack
servers as ::ffff:a.b.c.d. Only options from trusted balancer prefixes are
read. The programs stay attached (pinned under the BPF file system) when
lvs-node exits; "detach" removes them.

status, stats and doctor also inspect hosts that run the TOA kernel modules.`,
	}
	cmd.PersistentFlags().StringVar(&opts.PinDir, "pin-dir", toa.DefaultPinDir, "BPF file system directory of the pins")
	cmd.PersistentFlags().StringVar(&opts.Root, "root", toa.DefaultRoot, "root of the /proc and /sys trees to read (for inspecting a copy)")
	_ = cmd.PersistentFlags().MarkHidden("root")
	cmd.AddCommand(newToaAttachCmd(&opts), newToaDetachCmd(&opts), newToaStatusCmd(&opts),
		newToaStatsCmd(&opts), newToaVerifyCmd(&opts), newToaDoctorCmd(&opts))
	return cmd
}

func printLines(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func newToaAttachCmd(opts *toa.Options) *cobra.Command {
	var cfgPath, cgroup string
	var trusted []string
	var kinds []int
	var slots int
	cmd := &cobra.Command{
		Use:   "attach",
		Short: "Attach (or update) eBPF TOA",
		Long: `attach loads the programs, attaches them to the cgroup and pins them, or
updates what is attached: new programs replace the old ones in place, the
trusted prefixes and kinds change in the maps. Running it again with the
same settings changes nothing.

Settings come from the realserver.toa block of --config, or from the flags.
A loaded TOA kernel module makes attach refuse (both would rewrite) unless
--force is given.`,
		Example: `  lvs-node toa attach --trusted 10.0.0.0/24 --kinds 254,253
  lvs-node toa attach --config /etc/lvs-node/realserver.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg toa.Config
			if cfgPath != "" {
				c, _, err := rsagent.LoadConfig(cfgPath)
				if err != nil {
					return badConfig(cfgPath, err, cmd.ErrOrStderr())
				}
				t := c.Realserver.TOA
				if t == nil {
					return fmt.Errorf("%s has no realserver.toa block", cfgPath)
				}
				cfg, opts.Force = t.Config, opts.Force || t.Force
			} else {
				cfg.Cgroup, cfg.Slots = cgroup, slots
				if err := toa.CheckSlots(slots); err != nil {
					return fmt.Errorf("--slots: %w", err)
				}
				for _, s := range trusted {
					p, err := netip.ParsePrefix(s)
					if err != nil {
						return fmt.Errorf("--trusted %q: want a prefix such as 10.0.0.0/24", s)
					}
					cfg.Trusted = append(cfg.Trusted, p)
				}
				for _, k := range kinds {
					if k < 0 || k > 255 {
						return fmt.Errorf("--kinds %d: not an option kind", k)
					}
					cfg.Kinds = append(cfg.Kinds, uint8(k))
				}
				if len(cfg.Trusted) == 0 {
					return fmt.Errorf("--trusted is required: the balancers' source prefixes (options from anyone else are ignored)")
				}
			}
			changes, err := toa.Attach(cfg, *opts)
			printLines(cmd.OutOrStdout(), changes)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d changes\n", len(changes))
			return nil
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "real-server configuration with a realserver.toa block")
	cmd.Flags().StringVar(&cgroup, "cgroup", "", "cgroup v2 directory (default: the root of the unified hierarchy)")
	cmd.Flags().StringSliceVar(&trusted, "trusted", nil, "balancer source prefixes to trust (repeat or comma-separate)")
	cmd.Flags().IntSliceVar(&kinds, "kinds", nil, "option kinds to read: 254, 253, 200, 28 (default 254,253)")
	cmd.Flags().IntVar(&slots, "slots", 0, fmt.Sprintf("size of the preallocated address array, a power of two (default %d)", toa.DefaultSlots))
	cmd.Flags().BoolVar(&opts.Force, "force", false, "attach although a TOA kernel module is loaded")
	return cmd
}

func newToaDetachCmd(opts *toa.Options) *cobra.Command {
	return &cobra.Command{
		Use:   "detach",
		Short: "Detach eBPF TOA and remove its pins",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			changes, err := toa.Detach(*opts)
			printLines(cmd.OutOrStdout(), changes)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d changes\n", len(changes))
			return nil
		},
	}
}

func newToaStatusCmd(opts *toa.Options) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show eBPF TOA and loaded TOA kernel modules",
		Long: `status shows what eBPF TOA has attached where, its formats, trusted prefixes
and counters, and any loaded TOA kernel module with its version, parameters
and counters (from /sys/module and /proc/net/toa_stats).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := toa.ReadStatus(*opts)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			fmt.Fprint(cmd.OutOrStdout(), st.Text())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func newToaStatsCmd(opts *toa.Options) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Print the TOA counters in the layout of /proc/net/toa_stats",
		Long: `stats prints the per-CPU counters of eBPF TOA in the layout of the modules'
/proc/net/toa_stats, and the counters of a loaded TOA module from its file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			found := false
			if t, err := toa.ReadCounters(*opts); err == nil {
				found = true
				fmt.Fprintf(out, "eBPF TOA (%s):\n%s", opts.PinDir, t.Format())
			}
			mods, err := toa.FindModules(*opts)
			if err != nil {
				return err
			}
			for _, m := range mods {
				if m.Stats == nil {
					continue
				}
				found = true
				fmt.Fprintf(out, "module %s (%s):\n%s", m.Name, m.StatsFile, m.Stats.Format())
			}
			if !found {
				return fmt.Errorf("no TOA counters: eBPF TOA is not attached and no TOA module is loaded")
			}
			return nil
		},
	}
}

func newToaVerifyCmd(opts *toa.Options) *cobra.Command {
	var balancer, balancer6 string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Self-test: is the client address really revealed on this host?",
		Long: `verify tests whatever rewrites addresses on this host (the attached eBPF TOA or
a loaded TOA module). In a private network namespace and a cgroup made for
the test (below the cgroup eBPF TOA is attached to), a client writes a TOA
option with a known address into its handshake ACK, as a balancer does, and
a server checks what accept() and getpeername() return: over IPv4, to a
dual-stack server and over IPv6. It prints what it saw, removes everything
it made, and exits 0 only on a pass. It needs root (CAP_SYS_ADMIN too).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vo := toa.VerifyOptions{Options: *opts}
			for _, b := range []struct {
				s   string
				dst *netip.Addr
			}{{balancer, &vo.Balancer}, {balancer6, &vo.Balancer6}} {
				if b.s == "" {
					continue
				}
				a, err := netip.ParseAddr(b.s)
				if err != nil {
					return fmt.Errorf("balancer address %q: %w", b.s, err)
				}
				*b.dst = a
			}
			rep, err := toa.Verify(vo)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				fmt.Fprint(cmd.OutOrStdout(), rep.Text())
			}
			if !rep.Pass {
				return &exitError{code: 1, err: fmt.Errorf("toa verify failed")}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&balancer, "balancer", "", "IPv4 source of the test client (default: from the trusted prefixes)")
	cmd.Flags().StringVar(&balancer6, "balancer6", "", "IPv6 source of the test client (default: from the trusted prefixes)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func newToaDoctorCmd(opts *toa.Options) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check what eBPF TOA needs from this host, and say how to fix what is missing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var probe toa.Prober
			if opts.Root == toa.DefaultRoot || opts.Root == "" {
				probe = toa.LiveProbe{}
			}
			checks := toa.Doctor(*opts, probe)
			fmt.Fprint(cmd.OutOrStdout(), toa.FormatChecks(checks))
			if !toa.Healthy(checks) {
				n := 0
				for _, c := range checks {
					if !c.OK && !c.Warn {
						n++
					}
				}
				return &exitError{code: 1, err: fmt.Errorf("%s problem(s) stop eBPF TOA on this host", strconv.Itoa(n))}
			}
			return nil
		},
	}
}
