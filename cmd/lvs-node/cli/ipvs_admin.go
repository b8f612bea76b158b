package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvsadm"
)

// ipvsAdmin is what "lvs-node ipvs zero" and "ipvs timeout" need from the
// kernel.
type ipvsAdmin interface {
	Zero(ctx context.Context, k *ipvs.ServiceKey) error
	Timeouts(ctx context.Context) (ipvs.Timeouts, error)
	SetTimeouts(ctx context.Context, t ipvs.Timeouts) error
	Close() error
}

// adminOpener opens the kernel's IPVS for changes (or a fake in tests).
type adminOpener func() (ipvsAdmin, error)

func openKernelAdmin() (ipvsAdmin, error) {
	c, err := ipvs.Open()
	if err != nil {
		return nil, fmt.Errorf("open IPVS: %w", err)
	}
	return c, nil
}

// listSelectors are the options of "ipvs list" that pick what is listed
// instead of the whole table: one service (-t, -u, --sctp-service, -f
// with -6) or the connections (-c).
type listSelectors struct {
	tcp, udp, sctp, fwmark string
	ipv6, conns            bool
}

func addListSelectors(fl *pflag.FlagSet) *listSelectors {
	s := &listSelectors{}
	addServiceFlags(fl, s)
	fl.BoolVarP(&s.conns, "connection", "c", false, `list the connections, as "ipvsadm -Lnc" (read from `+ipvsadm.ConnFile+`)`)
	return s
}

// addServiceFlags registers ipvsadm's options that name a service.
func addServiceFlags(fl *pflag.FlagSet, s *listSelectors) {
	fl.StringVarP(&s.tcp, "tcp-service", "t", "", "the TCP service ADDRESS:PORT")
	fl.StringVarP(&s.udp, "udp-service", "u", "", "the UDP service ADDRESS:PORT")
	fl.StringVar(&s.sctp, "sctp-service", "", "the SCTP service ADDRESS:PORT")
	fl.StringVarP(&s.fwmark, "fwmark-service", "f", "", "the firewall-mark service MARK")
	fl.BoolVarP(&s.ipv6, "ipv6", "6", false, "the firewall mark is an IPv6 one (with -f)")
}

// service returns the service the options name, or nil when none.
func (s *listSelectors) service() (*ipvs.ServiceKey, error) {
	var proto, val string
	n := 0
	for _, o := range []struct{ proto, val string }{{"tcp", s.tcp}, {"udp", s.udp}, {"sctp", s.sctp}, {"fwmark", s.fwmark}} {
		if o.val != "" {
			proto, val = o.proto, o.val
			n++
		}
	}
	switch {
	case n > 1:
		return nil, errors.New("name one service: -t, -u, --sctp-service or -f")
	case n == 0 && s.ipv6:
		return nil, errors.New("-6 used without -f")
	case n == 0:
		return nil, nil
	}
	var services ipvsadm.Services
	if proto != "fwmark" {
		if _, err := strconv.ParseUint(portOf(val), 10, 16); err != nil {
			// A port name: look it up as ipvsadm does.
			if svc, err := ipvsadm.LoadServices("/etc/services"); err == nil {
				services = svc
			}
		}
	}
	k, err := ipvsadm.ServiceKeyOf(proto, val, s.ipv6, services)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// portOf returns what follows the last colon of an address[:port] ("" for
// a bare address).
func portOf(s string) string {
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case ':':
			return s[i+1:]
		case ']':
			return ""
		}
	}
	return ""
}

// list handles "ipvs list" when a selector is given and reports whether
// it did.
func (s *listSelectors) list(cmd *cobra.Command, open ipvsOpener, connFile string, opts ipvsadm.ListOptions, asJSON bool) (bool, error) {
	k, err := s.service()
	if err != nil {
		return true, err
	}
	if s.conns {
		if k != nil || asJSON || opts.Format != ipvsadm.FormatDefault && opts.Format != ipvsadm.FormatPersistentConn {
			return true, errors.New("-c lists connections: it takes no service and, of the layouts, --persistent-conn only")
		}
		f, err := os.Open(connFile)
		if err != nil {
			return true, fmt.Errorf("read connections: %w (is the ip_vs module loaded?)", err)
		}
		defer f.Close()
		return true, ipvsadm.WriteConns(cmd.OutOrStdout(), f, ipvsadm.ConnOptions{PersistentConn: opts.Format == ipvsadm.FormatPersistentConn})
	}
	if k == nil {
		return false, nil
	}
	if asJSON {
		return true, errors.New("--json lists the whole table")
	}
	t, _, err := readIPVS(cmd.Context(), open, false)
	if err != nil {
		return true, err
	}
	if err := ipvsadm.WriteService(cmd.OutOrStdout(), t, *k, opts); err != nil {
		return true, fmt.Errorf("%s: %w", k, err)
	}
	return true, nil
}

// withAdmin opens the kernel, runs fn with a bounded context and closes.
func withAdmin(cmd *cobra.Command, open adminOpener, fn func(ctx context.Context, a ipvsAdmin) error) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, ipvsReadTimeout)
	defer cancel()
	a, err := open()
	if err != nil {
		return err
	}
	defer a.Close()
	return fn(ctx, a)
}

// newZeroCmd builds "lvs-node ipvs zero", ipvsadm -Z.
func newZeroCmd(open adminOpener) *cobra.Command {
	sel := &listSelectors{}
	cmd := &cobra.Command{
		Use:   "zero [-t|-u|--sctp-service ADDRESS:PORT | -f MARK [-6]]",
		Short: "Reset the counters of one service or of all (ipvsadm -Z)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := sel.service()
			if err != nil {
				return err
			}
			return withAdmin(cmd, open, func(ctx context.Context, a ipvsAdmin) error { return a.Zero(ctx, k) })
		},
	}
	addServiceFlags(cmd.Flags(), sel)
	return cmd
}

// newTimeoutCmd builds "lvs-node ipvs timeout", ipvsadm -L --timeout and
// ipvsadm --set.
func newTimeoutCmd(open adminOpener) *cobra.Command {
	var set bool
	cmd := &cobra.Command{
		Use:   "timeout [--set TCP TCPFIN UDP]",
		Short: "Show or set the connection timeouts (ipvsadm -L --timeout, ipvsadm --set)",
		Long: `Without --set, prints the connection timeouts in seconds as "ipvsadm -L --timeout"
does. With --set, sets them: three whole numbers of seconds for established TCP,
TCP after a FIN, and UDP; 0 leaves that timeout as it is. A running director
with timeouts: in its configuration puts its own back at its next resync.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if set && len(args) != 3 {
				return errors.New("--set requires 3 timeout values")
			}
			if !set && len(args) != 0 {
				return fmt.Errorf("unexpected argument %s", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !set {
				return withAdmin(cmd, open, func(ctx context.Context, a ipvsAdmin) error {
					t, err := a.Timeouts(ctx)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(cmd.OutOrStdout(), "Timeout (tcp tcpfin udp): %d %d %d\n", t.TCP/time.Second, t.TCPFin/time.Second, t.UDP/time.Second)
					return err
				})
			}
			var secs [3]time.Duration
			for i, a := range args {
				n, err := strconv.ParseUint(a, 10, 32)
				if err != nil || n > maxIPVSTimeout {
					return fmt.Errorf("invalid timeout value %q (want 0 to %d seconds)", a, maxIPVSTimeout)
				}
				secs[i] = time.Duration(n) * time.Second
			}
			return withAdmin(cmd, open, func(ctx context.Context, a ipvsAdmin) error {
				return a.SetTimeouts(ctx, ipvs.Timeouts{TCP: secs[0], TCPFin: secs[1], UDP: secs[2]})
			})
		},
	}
	cmd.Flags().BoolVar(&set, "set", false, "set the timeouts: TCP TCPFIN UDP, in seconds")
	return cmd
}

// maxIPVSTimeout is ipvsadm's MAX_TIMEOUT: 31 days.
const maxIPVSTimeout = 86400 * 31
