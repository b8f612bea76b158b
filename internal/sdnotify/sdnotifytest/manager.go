package sdnotifytest

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Manager is the receiving end of NOTIFY_SOCKET for one test.
type Manager struct {
	c *net.UnixConn
}

// Listen binds a datagram socket, points NOTIFY_SOCKET at it for the rest
// of the test (so the test cannot run in parallel) and closes it at the
// end.
func Listen(t testing.TB) *Manager {
	t.Helper()
	// Unix socket paths are short: keep it under the temporary directory.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return &Manager{c: c}
}

// Next returns the next message, or false when none arrives within
// timeout.
func (m *Manager) Next(timeout time.Duration) (string, bool) {
	buf := make([]byte, 4096)
	_ = m.c.SetReadDeadline(time.Now().Add(timeout))
	n, err := m.c.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "", false
	}
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}
