package healthz

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsChecker sends one query (over UDP, again over TCP when the reply is
// truncated) and expects the response code expect_rcode.
type dnsChecker struct {
	addr    string
	timeout time.Duration
	name    string
	qtype   uint16
	rcode   int
	udp     *dns.Client
	tcp     *dns.Client
}

func newDNS(s *Spec, addr netip.AddrPort) (*dnsChecker, error) {
	qt, ok := dns.StringToType[strings.ToUpper(s.QType)]
	if !ok {
		return nil, fmt.Errorf("qtype: unknown DNS query type %q", s.QType)
	}
	rc, ok := dns.StringToRcode[strings.ToUpper(s.ExpectRcode)]
	if !ok {
		return nil, fmt.Errorf("expect_rcode: unknown DNS response code %q", s.ExpectRcode)
	}
	t := s.Timeout.D()
	return &dnsChecker{
		addr: addr.String(), timeout: t, name: dns.Fqdn(s.Query), qtype: qt, rcode: rc,
		udp: &dns.Client{Net: "udp", Timeout: t},
		tcp: &dns.Client{Net: "tcp", Timeout: t},
	}, nil
}

func (c *dnsChecker) Check(ctx context.Context) Result {
	start := time.Now()
	q := new(dns.Msg)
	q.SetQuestion(c.name, c.qtype)
	r, _, err := c.udp.ExchangeContext(ctx, q, c.addr)
	if err == nil && r.Truncated {
		r, _, err = c.tcp.ExchangeContext(ctx, q, c.addr)
	}
	if err != nil {
		var ne net.Error
		var oe *net.OpError
		switch {
		case errors.As(err, &oe), errors.As(err, &ne) && ne.Timeout(), ctx.Err() != nil:
			return failErr(ctx, start, c.timeout, err)
		case errors.Is(err, dns.ErrId):
			return fail(start, KindProtocol, "DNS reply to another query")
		}
		return fail(start, KindProtocol, "bad DNS reply: %s", strings.TrimPrefix(err.Error(), "dns: "))
	}
	if r.Rcode != c.rcode {
		return fail(start, KindRcode, "DNS %s", rcodeName(r.Rcode))
	}
	return passf(start, "DNS %s, %d answers", rcodeName(r.Rcode), len(r.Answer))
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("rcode %d", rc)
}
