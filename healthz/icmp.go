package healthz

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// icmpMode picks the socket of an icmp check.
type icmpMode int

const (
	// icmpAuto uses an unprivileged ping socket where the host allows it
	// (net.ipv4.ping_group_range holds the process's group) and a raw
	// socket otherwise.
	icmpAuto icmpMode = iota
	icmpPing
	icmpRaw
)

const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// icmpChecker sends one echo request and waits for the matching reply.
type icmpChecker struct {
	addr    netip.Addr
	timeout time.Duration
	mode    icmpMode
	id      int           // echo identifier on a raw socket (a ping socket sets its own)
	seq     atomic.Uint32 // echo sequence
	raw     atomic.Bool   // auto mode fell back to raw sockets
}

func newICMP(s *Spec, addr netip.Addr, mode icmpMode) *icmpChecker {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return &icmpChecker{addr: addr, timeout: s.Timeout.D(), mode: mode, id: int(binary.BigEndian.Uint16(b[:]))}
}

// listen opens the socket for the mode, falling back from ping to raw in
// auto mode when the host refuses ping sockets.
func (c *icmpChecker) listen() (*icmp.PacketConn, bool, error) {
	network, raw := "udp4", "ip4:icmp"
	if c.addr.Is6() {
		network, raw = "udp6", "ip6:ipv6-icmp"
	}
	if c.mode == icmpRaw || c.mode == icmpAuto && c.raw.Load() {
		pc, err := icmp.ListenPacket(raw, "")
		return pc, true, err
	}
	pc, err := icmp.ListenPacket(network, "")
	if err != nil && c.mode == icmpAuto && (errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EPROTONOSUPPORT)) {
		c.raw.Store(true)
		pc, err = icmp.ListenPacket(raw, "")
		return pc, true, err
	}
	return pc, false, err
}

func (c *icmpChecker) Check(ctx context.Context) Result {
	start := time.Now()
	pc, raw, err := c.listen()
	if err != nil {
		return fail(start, KindOther, "open ICMP socket: %v", errors.Unwrap(err))
	}
	defer pc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = pc.SetDeadline(dl)
	}
	defer context.AfterFunc(ctx, func() { _ = pc.SetDeadline(time.Now()) })()

	seq := int(c.seq.Add(1) & 0xffff)
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	var typ, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := protoICMP
	if c.addr.Is6() {
		typ, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, protoICMPv6
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: c.id, Seq: seq, Data: token}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return fail(start, KindOther, "build echo request: %v", err)
	}
	var dst net.Addr = &net.UDPAddr{IP: c.addr.AsSlice(), Zone: c.addr.Zone()}
	if raw {
		dst = &net.IPAddr{IP: c.addr.AsSlice(), Zone: c.addr.Zone()}
	}
	if _, err := pc.WriteTo(b, dst); err != nil {
		return failErr(ctx, start, c.timeout, err)
	}
	buf := make([]byte, 1500)
	for {
		n, peer, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != context.Canceled {
				return fail(start, KindTimeout, "no echo reply within %s", c.timeout)
			}
			return failErr(ctx, start, c.timeout, err)
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != reply || !samePeer(peer, c.addr) {
			continue // a raw socket sees every ICMP message of the host
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || echo.Seq != seq || !bytes.Equal(echo.Data, token) || raw && echo.ID != c.id {
			continue
		}
		return pass(start, "echo reply")
	}
}

func samePeer(peer net.Addr, want netip.Addr) bool {
	var ip net.IP
	switch p := peer.(type) {
	case *net.UDPAddr:
		ip = p.IP
	case *net.IPAddr:
		ip = p.IP
	}
	a, ok := netip.AddrFromSlice(ip)
	return ok && a.Unmap() == want.Unmap()
}
