package healthz

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"
)

// udpServer answers each datagram with reply(payload), or not at all when
// reply returns nil.
func udpServer(t *testing.T, reply func([]byte) []byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if r := reply(buf[:n]); r != nil {
				pc.WriteTo(r, from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestUDP(t *testing.T) {
	const timeout = 300 * time.Millisecond
	echo := udpServer(t, func(b []byte) []byte { return bytes.Clone(b) })
	silent := udpServer(t, func([]byte) []byte { return nil })
	wrong := udpServer(t, func([]byte) []byte { return []byte("NAK") })
	runCases(t, TypeUDP, timeout, []checkCase{
		{"expected reply", Spec{Payload: "ping", Expect: "ping"}, echo, true, "", "reply of 4 bytes"},
		{"any reply", Spec{Payload: "ping"}, echo, true, "", "reply of 4 bytes"},
		{"wrong reply", Spec{Payload: "ping", Expect: "ping"}, wrong, false, KindMismatch, `reply "NAK" does not contain "ping"`},
		{"no reply expected", Spec{Payload: "ping"}, silent, true, "", "no reply and no ICMP error within 300ms"},
		{"no reply", Spec{Payload: "ping", Expect: "pong"}, silent, false, KindTimeout, "no reply within 300ms"},
		{"port unreachable", Spec{Payload: "ping"}, closedPort(t, "udp"), false, KindRefused, "ICMP port unreachable"},
		{"port unreachable with expect", Spec{Payload: "ping", Expect: "ping"}, closedPort(t, "udp"), false, KindRefused, "ICMP port unreachable"},
	})
}
