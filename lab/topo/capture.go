package topo

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Packet is one frame a Capture saw, from its Ethernet header.
type Packet struct {
	Data []byte
	// Outgoing: the host sent it (else it received it).
	Outgoing bool
	// CsumNotReady: the kernel had not computed the transport checksum
	// yet (checksum offload pending: the field holds the pseudo-header
	// sum only).
	CsumNotReady bool
}

// Capture records the frames of one interface of a host through an
// AF_PACKET socket, as tcpdump would.
type Capture struct {
	fd      int
	mu      sync.Mutex
	pkts    []Packet
	err     error
	stopped bool
	done    chan struct{}
}

// Capture starts recording the frames of the host's interface ifname. It
// stops when Stop is called or the test ends.
func (h *Host) Capture(t testing.TB, ifname string) *Capture {
	t.Helper()
	c := &Capture{done: make(chan struct{})}
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		c.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if err != nil {
		if c.fd > 0 {
			unix.Close(c.fd)
		}
		t.Fatalf("topo: capture on %s %s: %v", h.Name, ifname, err)
	}
	go c.loop(c.fd)
	t.Cleanup(func() { c.Stop() })
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) loop(fd int) {
	defer close(c.done)
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		c.mu.Lock()
		stop := c.stopped
		c.mu.Unlock()
		if stop {
			return
		}
		n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		p := Packet{Data: append([]byte(nil), buf[:min(n, len(buf))]...)}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			p.Outgoing = ll.Pkttype == unix.PACKET_OUTGOING
		}
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
					aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
					p.CsumNotReady = aux.Status&unix.TP_STATUS_CSUMNOTREADY != 0
				}
			}
		}
		c.mu.Lock()
		c.pkts = append(c.pkts, p)
		c.mu.Unlock()
	}
}

// Packets returns a copy of the frames seen so far.
func (c *Capture) Packets() []Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Packet(nil), c.pkts...)
}

// Stop ends the capture and returns the error that ended it early, if
// any. Stopping twice is harmless.
func (c *Capture) Stop() error {
	c.mu.Lock()
	first := !c.stopped
	c.stopped = true
	c.mu.Unlock()
	<-c.done // the loop sees stopped within one receive timeout
	if first {
		unix.Close(c.fd)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
