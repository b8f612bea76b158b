package toa

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/lvs-node/lvs-node/toa/format"
)

// Addresses the self-test writes into its options: the "real clients"
// (documentation prefixes; they are only data, nothing is sent to them).
var (
	verifyClient4 = netip.MustParseAddrPort("203.0.113.7:40001")
	verifyClient6 = netip.MustParseAddrPort("[2001:db8:c1::7]:40002")
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	Options
	// Balancer and Balancer6 are the source addresses the self-test's
	// client connects from. Empty: an address of the first trusted
	// prefix of each family when eBPF TOA is attached, else 192.0.2.1
	// and 2001:db8::1.
	Balancer, Balancer6 netip.Addr
}

// VerifyCase is one connection of the self-test.
type VerifyCase struct {
	Name     string `json:"name"`
	Sent     string `json:"sent"`
	Balancer string `json:"balancer"`
	Accept   string `json:"accept"`
	Peer     string `json:"getpeername"`
	Want     string `json:"want"`
	Pass     bool   `json:"pass"`
	Skipped  string `json:"skipped,omitempty"`
	Error    string `json:"error,omitempty"`
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	// Rewriter names what rewrites addresses on this host.
	Rewriter string       `json:"rewriter"`
	Cases    []VerifyCase `json:"cases"`
	Pass     bool         `json:"pass"`
}

// Verify is a self-test of whatever rewrites addresses on this host, the
// attached eBPF TOA or a loaded TOA module: in a private network namespace
// and cgroup (below the cgroup eBPF TOA is attached to), a client writes a
// TOA option with a known address into its handshake ACK, as a balancer
// would, and a server checks what accept() and getpeername() return: over
// IPv4, to a dual-stack server, and over IPv6. Everything it makes is
// removed before it returns.
func Verify(o VerifyOptions) (*VerifyReport, error) {
	rep := &VerifyReport{}
	st, err := ReadStatus(o.Options)
	if err != nil {
		return nil, err
	}
	parent := ""
	var rewriters []string
	if st.Attached {
		parent = st.Hooks[0].Cgroup
		rewriters = append(rewriters, "eBPF TOA on "+parent)
	}
	for _, m := range st.Modules {
		rewriters = append(rewriters, "kernel module "+m.Name)
	}
	if len(rewriters) == 0 {
		rewriters = append(rewriters, "nothing: no eBPF TOA attached and no TOA module loaded")
	}
	rep.Rewriter = strings.Join(rewriters, " and ")

	b4, b6 := o.Balancer, o.Balancer6
	if st.Attached {
		ps, _ := TrustedPrefixes(o.Options)
		for _, p := range ps {
			a := p.Addr()
			if p.Bits() < a.BitLen() {
				a = a.Next()
			}
			if a.Is4() && !b4.IsValid() {
				b4 = a
			}
			if a.Is6() && !b6.IsValid() {
				b6 = a
			}
		}
	} else {
		if !b4.IsValid() {
			b4 = netip.MustParseAddr("192.0.2.1")
		}
		if !b6.IsValid() {
			b6 = netip.MustParseAddr("2001:db8::1")
		}
	}
	srv4, srv6 := netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("2001:db8:5::10")
	if b4 == srv4 {
		srv4 = srv4.Next()
	}
	if b6 == srv6 {
		srv6 = srv6.Next()
	}
	var addrs []netip.Addr
	for _, a := range []netip.Addr{b4, b6, srv4, srv6} {
		if a.IsValid() {
			addrs = append(addrs, a)
		}
	}
	lab, err := NewLab(LabOptions{Parent: parent, Addrs: addrs, Root: o.Root})
	if err != nil {
		return nil, fmt.Errorf("self-test lab: %w", err)
	}
	defer lab.Close()

	type tc struct {
		name   string
		listen Listen
		bal    netip.Addr
		srv    netip.Addr
		id     format.ID
		client netip.AddrPort
		want   netip.AddrPort
	}
	mapped := netip.AddrPortFrom(netip.AddrFrom16(verifyClient4.Addr().As16()), verifyClient4.Port())
	cases := []tc{
		{"ipv4", ListenIPv4, b4, srv4, format.K254, verifyClient4, verifyClient4},
		{"dual-stack", ListenDual, b4, srv4, format.K254, verifyClient4, mapped},
		{"ipv6", ListenIPv6, b6, srv6, format.K254b, verifyClient6, verifyClient6},
	}
	rep.Pass = true
	for _, c := range cases {
		vc := VerifyCase{Name: c.name, Want: c.want.String()}
		if !c.bal.IsValid() {
			vc.Skipped = "no trusted prefix of this family"
			rep.Cases = append(rep.Cases, vc)
			continue
		}
		opt, err := format.Encode(c.id, c.client)
		if err != nil {
			return nil, err
		}
		vc.Sent = fmt.Sprintf("%s option %s (% x) in the handshake ACK", format.All()[c.id-1], c.client, opt)
		if err := lab.Inject(InACK, opt); err != nil {
			return nil, err
		}
		seen, err := lab.Connect(Conn{Listen: c.listen, Server: c.srv, Balancer: c.bal})
		if err != nil {
			vc.Error = err.Error()
			rep.Pass = false
			rep.Cases = append(rep.Cases, vc)
			continue
		}
		vc.Balancer, vc.Accept, vc.Peer = seen.Balancer.String(), seen.Accept.String(), seen.Peer.String()
		vc.Pass = seen.Accept == c.want && seen.Peer == c.want
		if !vc.Pass {
			rep.Pass = false
		}
		rep.Cases = append(rep.Cases, vc)
	}
	if w, failed, last, err := lab.InjectorStats(); err == nil && (w == 0 || failed > 0) {
		rep.Pass = false
		rep.Cases = append(rep.Cases, VerifyCase{Name: "injector", Error: fmt.Sprintf("wrote %d options, %d refused (last error %d)", w, failed, last)})
	}
	return rep, nil
}

// Text renders the report for people.
func (r *VerifyReport) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rewriter: %s\n", r.Rewriter)
	for _, c := range r.Cases {
		switch {
		case c.Skipped != "":
			fmt.Fprintf(&b, "skip  %-10s %s\n", c.Name, c.Skipped)
		case c.Error != "":
			fmt.Fprintf(&b, "FAIL  %-10s %s\n", c.Name, c.Error)
		default:
			v := "pass"
			if !c.Pass {
				v = "FAIL"
			}
			fmt.Fprintf(&b, "%s  %-10s sent %s from %s\n", v, c.Name, c.Sent, c.Balancer)
			fmt.Fprintf(&b, "      %-10s accept() %s, getpeername() %s, want %s\n", "", c.Accept, c.Peer, c.Want)
		}
	}
	if r.Pass {
		b.WriteString("PASS: accept() and getpeername() return the address from the TOA option\n")
	} else {
		b.WriteString("FAIL: the client address is not revealed as it should be\n")
	}
	return b.String()
}
