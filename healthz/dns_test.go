package healthz

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsServer serves answer on UDP and TCP at one loopback port; an answer
// truncated over UDP is given whole over TCP. raw, when
// set, replaces the UDP reply with raw(packed reply).
func dnsServer(t *testing.T, answer func(q *dns.Msg) *dns.Msg, raw func([]byte) []byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	l, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); l.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			r := answer(q)
			if r == nil {
				continue
			}
			b, _ := r.Pack()
			if raw != nil {
				b = raw(b)
			}
			pc.WriteTo(b, from)
		}
	}()
	tcp := &dns.Server{Listener: l, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		if r := answer(q); r != nil {
			if r.Truncated { // the whole answer comes over TCP only
				r = reply(r.Rcode, false)(q)
			}
			w.WriteMsg(r)
		}
	})}
	go tcp.ActivateAndServe()
	t.Cleanup(func() { tcp.Shutdown() })
	return addr
}

func reply(rcode int, truncated bool) func(q *dns.Msg) *dns.Msg {
	return func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg)
		r.SetRcode(q, rcode)
		r.Truncated = truncated
		if rcode == dns.RcodeSuccess && !truncated {
			rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.1")
			r.Answer = append(r.Answer, rr)
		}
		return r
	}
}

func TestDNS(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ok := dnsServer(t, reply(dns.RcodeSuccess, false), nil)
	nx := dnsServer(t, reply(dns.RcodeNameError, false), nil)
	tc := dnsServer(t, reply(dns.RcodeSuccess, true), nil)
	cut := dnsServer(t, reply(dns.RcodeSuccess, false), func(b []byte) []byte { return b[:len(b)-6] })
	silent := dnsServer(t, func(*dns.Msg) *dns.Msg { return nil }, nil)
	runCases(t, TypeDNS, timeout, []checkCase{
		{"noerror", Spec{Query: "www.example.org", QType: "A"}, ok, true, "", "DNS NOERROR, 1 answers"},
		{"default query", Spec{}, ok, true, "", "DNS NOERROR"},
		{"wrong rcode", Spec{Query: "gone.example.org"}, nx, false, KindRcode, "DNS NXDOMAIN"},
		{"expected rcode", Spec{Query: "gone.example.org", ExpectRcode: "nxdomain"}, nx, true, "", "DNS NXDOMAIN"},
		{"truncated reply retried over tcp", Spec{Query: "www.example.org", QType: "A"}, tc, true, "", "DNS NOERROR, 1 answers"},
		{"cut reply", Spec{Query: "www.example.org", QType: "A"}, cut, false, KindProtocol, "bad DNS reply"},
		{"no reply", Spec{Query: "www.example.org"}, silent, false, KindTimeout, "timeout after 300ms"},
	})
}
