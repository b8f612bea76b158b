package topo

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Dial connects from inside the host's namespace.
func (h *Host) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from %s: %w", network, addr, h.Name, err)
	}
	return c, nil
}

// DialFrom connects from inside the host's namespace with a fixed local
// address and port (port 0 picks one).
func (h *Host) DialFrom(network, local, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		d := net.Dialer{Timeout: timeout}
		var err error
		switch network {
		case "tcp", "tcp4", "tcp6":
			d.LocalAddr, err = net.ResolveTCPAddr(network, local)
		default:
			d.LocalAddr, err = net.ResolveUDPAddr(network, local)
		}
		if err != nil {
			return err
		}
		c, err = d.Dial(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from %s (%s): %w", network, addr, h.Name, local, err)
	}
	return c, nil
}

// Listen opens a listener inside the host's namespace.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := h.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// ListenPacket opens a packet socket inside the host's namespace.
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := h.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, addr)
		return err
	})
	return c, err
}

// ServeName serves TCP on every address of the host at port: each
// connection is answered with the host's name and a newline, then closed.
// It also answers UDP datagrams on the same port with the name. The servers
// stop when the test ends.
func (h *Host) ServeName(t testing.TB, port int) {
	t.Helper()
	addr := net.JoinHostPort("::", strconv.Itoa(port))
	l, err := h.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("topo: listen on %s:%d: %v", h.Name, port, err)
	}
	pc, err := h.ListenPacket("udp", addr)
	if err != nil {
		l.Close()
		t.Fatalf("topo: listen udp on %s:%d: %v", h.Name, port, err)
	}
	t.Cleanup(func() { l.Close(); pc.Close() })
	reply := []byte(h.Name + "\n")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Write(reply)
			}()
		}
	}()
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(reply, from)
		}
	}()
}

// Get connects over TCP from the host to addr and returns what the server
// sent before closing, without the trailing newline (the server's name for
// ServeName servers).
func (h *Host) Get(addr string, timeout time.Duration) (string, error) {
	c, err := h.Dial("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", addr, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// GetUDP sends one datagram from the host to addr and returns the reply.
func (h *Host) GetUDP(addr string, timeout time.Duration) (string, error) {
	c, err := h.Dial("udp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("?")); err != nil {
		return "", fmt.Errorf("send to %s: %w", addr, err)
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", addr, err)
	}
	return strings.TrimSpace(string(buf[:n])), nil
}
