package packaging_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
)

// The real server daemon of the package, run in a network namespace of
// its own, serves /metrics that pass promtool check metrics.
func TestPromtoolCheckRealserverMetrics(t *testing.T) {
	need(t, "promtool", "dpkg-deb")
	deb, _ := built(t, "amd64")
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)
	bin := filepath.Join(root, "usr/sbin/lvs-node")
	dir := t.TempDir()
	// Unix socket paths are short: keep it under the temporary directory.
	sockDir, err := os.MkdirTemp("", "lvs-node-rsm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "c.sock")
	cfg := filepath.Join(dir, "realserver.yaml")
	body := fmt.Sprintf("realserver:\n  state_dir: %s/state\n  vips: [{address: 10.0.0.100, mode: dr}]\nlisten:\n  metrics: 127.0.0.1:9723\n  control: %s\n", dir, sock)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	ns := kerneltest.FreshNetns(t) // this goroutine's thread, and what it starts, are in it now
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	daemon := exec.Command(bin, "realserver", "--config", cfg)
	var logs strings.Builder
	daemon.Stdout, daemon.Stderr = &logs, &logs
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = daemon.Process.Signal(syscall.SIGTERM)
		_ = daemon.Wait()
	}()
	deadline := time.Now().Add(20 * time.Second)
	for exec.Command(bin, "realserver", "status", "--socket", sock).Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not become ready:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Dialled from this thread, so inside the namespace.
	c, err := net.DialTimeout("tcp", "127.0.0.1:9723", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	if !strings.Contains(string(text), "\nlvs_node_realserver_vips 1\n") {
		t.Fatalf("the real server's metrics lack the bound VIP:\n%s", text)
	}
	promtoolCheckMetrics(t, "real server", string(text))
}
