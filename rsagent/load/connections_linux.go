package load

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// tcpEstablished is TCP_ESTABLISHED in the kernel's tcp_states.h.
const tcpEstablished = 1

// Connections is the connections source: established TCP connections on
// the given local ports, counted through sock_diag.
type Connections struct {
	ports map[uint16]bool
	max   float64

	mu sync.Mutex // one dump at a time on the handle's socket
	h  *netlink.Handle
}

// NewConnections counts connections in the caller's network namespace.
func NewConnections(ports []uint16, max int) (*Connections, error) {
	return newConnections(ports, max, func() (*netlink.Handle, error) { return netlink.NewHandle(unix.NETLINK_INET_DIAG) })
}

// NewConnectionsAt counts connections in the network namespace ns.
func NewConnectionsAt(ns netns.NsHandle, ports []uint16, max int) (*Connections, error) {
	return newConnections(ports, max, func() (*netlink.Handle, error) { return netlink.NewHandleAt(ns, unix.NETLINK_INET_DIAG) })
}

func newConnections(ports []uint16, max int, open func() (*netlink.Handle, error)) (*Connections, error) {
	if len(ports) == 0 {
		return nil, errors.New("connections: at least one port is needed")
	}
	if max <= 0 {
		return nil, fmt.Errorf("connections: max must be above 0, got %d", max)
	}
	h, err := open()
	if err != nil {
		return nil, fmt.Errorf("connections: sock_diag: %w", err)
	}
	c := &Connections{ports: map[uint16]bool{}, max: float64(max), h: h}
	for _, p := range ports {
		c.ports[p] = true
	}
	return c, nil
}

// Count returns the established connections on the ports.
func (c *Connections) Count() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := c.h.SocketDiagTCP(fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return 0, fmt.Errorf("connections: sock_diag dump: %w", err)
		}
		for _, s := range socks {
			if s.State == tcpEstablished && c.ports[s.ID.SourcePort] {
				n++
			}
		}
	}
	return n, nil
}

// Read implements Source.
func (c *Connections) Read(context.Context) (Reading, error) {
	n, err := c.Count()
	if err != nil {
		return Reading{}, err
	}
	return capacity(100 * (1 - float64(n)/c.max)), nil
}

// Close releases the netlink socket.
func (c *Connections) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.h.Close()
}
