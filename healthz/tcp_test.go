package healthz

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestTCP(t *testing.T) {
	const timeout = 300 * time.Millisecond
	open := listen(t, func(c net.Conn) { io.Copy(io.Discard, c); c.Close() })
	banner := listen(t, func(c net.Conn) { c.Write([]byte("+OK ready\r\n")); io.Copy(io.Discard, c); c.Close() })
	echo := listen(t, func(c net.Conn) { io.Copy(c, c); c.Close() })
	silent := listen(t, func(c net.Conn) { time.Sleep(2 * timeout); c.Close() })
	resets := listen(t, func(c net.Conn) { buf := make([]byte, 10); c.Read(buf); reset(c) })
	wrong := listen(t, func(c net.Conn) { c.Write([]byte("-ERR go away\r\n")); c.Close() })

	t.Run("connect", func(t *testing.T) {
		wantResult(t, runCheck(t, spec(Spec{Type: TypeTCP}, timeout), open), true, "", "connected")
	})
	t.Run("refused", func(t *testing.T) {
		wantResult(t, runCheck(t, spec(Spec{Type: TypeTCP}, timeout), closedPort(t, "tcp")), false, KindRefused, "connect: connection refused")
	})
	t.Run("banner", func(t *testing.T) {
		wantResult(t, runCheck(t, spec(Spec{Type: TypeTCP, Expect: "+OK"}, timeout), banner), true, "", "reply matches")
	})
	t.Run("send and expect", func(t *testing.T) {
		wantResult(t, runCheck(t, spec(Spec{Type: TypeTCP, Send: "PING\r\n", Expect: "PING"}, timeout), echo), true, "", "reply matches")
	})
	t.Run("wrong reply", func(t *testing.T) {
		wantResult(t, runCheck(t, spec(Spec{Type: TypeTCP, Expect: "+OK"}, timeout), wrong), false, KindMismatch, `reply "-ERR go away" does not contain "+OK"`)
	})
	t.Run("slow", func(t *testing.T) {
		wantResult(t, runCheck(t, spec(Spec{Type: TypeTCP, Expect: "+OK"}, timeout), silent), false, KindTimeout, "timeout after 300ms")
	})
	t.Run("reset", func(t *testing.T) {
		wantResult(t, runCheck(t, spec(Spec{Type: TypeTCP, Send: "HELLO\r\n", Expect: "+OK"}, timeout), resets), false, KindReset, "connection reset by peer")
	})
}
