//go:build e2e

package e2e

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// peerReport is what a full-NAT real server's application saw of one
// connection: the address accept() returned, the one getpeername()
// returns, and the socket's inode (to find the connection in the
// kernel's table, which shows the balancer's address).
type peerReport struct {
	RS          string
	Accept      netip.AddrPort
	Getpeername netip.AddrPort
	Inode       uint64
}

func (r peerReport) line() string {
	return fmt.Sprintf("rs=%s accept=%s getpeername=%s inode=%d\n", r.RS, r.Accept, r.Getpeername, r.Inode)
}

func parseReport(line string) (peerReport, error) {
	var r peerReport
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		var err error
		switch k {
		case "rs":
			r.RS = v
		case "accept":
			r.Accept, err = netip.ParseAddrPort(v)
		case "getpeername":
			r.Getpeername, err = netip.ParseAddrPort(v)
		case "inode":
			r.Inode, err = strconv.ParseUint(v, 10, 64)
		}
		if err != nil {
			return r, fmt.Errorf("report %q: %w", line, err)
		}
	}
	return r, nil
}

func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// toaApp serves on addr in h as an unmodified application would: for
// each connection it writes one report line, then echoes until the
// client closes. It stops when the test ends.
func toaApp(t testing.TB, h *topo.Host, addr string) {
	t.Helper()
	ln, err := h.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s %s: %v", h.Name, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := peerReport{RS: h.Name, Accept: unmapped(netip.MustParseAddrPort(c.RemoteAddr().String()))}
				sc, err := c.(*net.TCPConn).SyscallConn()
				if err == nil {
					_ = sc.Control(func(fd uintptr) {
						if sa, err := unix.Getpeername(int(fd)); err == nil {
							r.Getpeername = sockaddrPort(sa)
						}
						var st unix.Stat_t
						if unix.Fstat(int(fd), &st) == nil {
							r.Inode = st.Ino
						}
					})
				}
				_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
				if _, err := io.WriteString(c, r.line()); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}

func sockaddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return unmapped(netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)))
	}
	return netip.AddrPort{}
}

// kernelConn is a line of /proc/net/tcp or tcp6.
type kernelConn struct {
	Local, Remote netip.AddrPort
}

// kernelConns reads the TCP connection table of h (IPv4 and IPv6) by
// socket inode, as ss or netstat would show it.
func kernelConns(t testing.TB, h *topo.Host) map[uint64]kernelConn {
	t.Helper()
	out := map[uint64]kernelConn{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		text := h.MustRun(t, "cat", f)
		for _, line := range strings.Split(text, "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 {
				continue
			}
			l, err1 := procAddr(fs[1])
			r, err2 := procAddr(fs[2])
			ino, err3 := strconv.ParseUint(fs[9], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				t.Fatalf("%s on %s: bad line %q", f, h.Name, line)
			}
			if ino != 0 {
				out[ino] = kernelConn{Local: unmapped(l), Remote: unmapped(r)}
			}
		}
	}
	return out
}

// procAddr parses ADDR:PORT of /proc/net/tcp: the address as 32-bit
// words in host order, in hex.
func procAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q", a)
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// clientConn is one connection of a burst, open until closed.
type clientConn struct {
	Local  netip.AddrPort
	Report peerReport
	c      net.Conn
	r      *bufio.Reader
}

// roundTrip sends a line and waits for its echo.
func (c *clientConn) roundTrip(msg string) error {
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, msg+"\n"); err != nil {
		return err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg+"\n" {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// dialReport connects from local (port 0: any) to vip and reads the real
// server's report.
func dialReport(h *topo.Host, local, vip string) (*clientConn, error) {
	c, err := h.DialFrom("tcp", local, vip, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	cc := &clientConn{Local: unmapped(netip.MustParseAddrPort(c.LocalAddr().String())), c: c, r: bufio.NewReader(c)}
	line, err := cc.r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("report from %s to %s: %w", cc.Local, vip, err)
	}
	if cc.Report, err = parseReport(line); err != nil {
		c.Close()
		return nil, err
	}
	return cc, nil
}

// burst opens a connection to vip from every address of addrs with each
// of n ports from port, all at once, and keeps them open. onFail is
// called with the local addresses that failed before the test fails.
func burst(t *testing.T, h *topo.Host, vip string, addrs []string, port, n int, onFail func([]string)) []*clientConn {
	t.Helper()
	var mu sync.Mutex
	var out []*clientConn
	var errs []error
	var failed []string
	var wg sync.WaitGroup
	for _, a := range addrs {
		for p := port; p < port+n; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cc, err := dialReport(h, net.JoinHostPort(a, strconv.Itoa(p)), vip)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					failed = append(failed, net.JoinHostPort(a, strconv.Itoa(p)))
					return
				}
				out = append(out, cc)
			}()
		}
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range out {
			c.c.Close()
		}
	})
	if len(errs) > 0 {
		if onFail != nil {
			onFail(failed)
		}
		t.Fatalf("%d of %d connections to %s failed; first: %v", len(errs), len(addrs)*n, vip, errs[0])
	}
	return out
}
