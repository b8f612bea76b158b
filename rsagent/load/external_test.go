package load

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
)

func TestParseContent(t *testing.T) {
	good := []struct {
		in   string
		want Reading
	}{
		{"42", Reading{Capacity: 42, HasCapacity: true}},
		{" 12.5%\n", Reading{Capacity: 12.5, HasCapacity: true}},
		{"0", Reading{Capacity: 0, HasCapacity: true}},
		{"100\n", Reading{Capacity: 100, HasCapacity: true}},
		{"up 75%\n", Reading{Capacity: 75, HasCapacity: true, Health: agentcheck.HealthUp}},
		{"75%,maint # note", Reading{Capacity: 75, HasCapacity: true, Admin: agentcheck.AdminMaint}},
		{"up 150%", Reading{Capacity: 100, HasCapacity: true, Health: agentcheck.HealthUp}},
		{"down # db gone\r\nsecond line", Reading{Health: agentcheck.HealthDown}},
		{"drain", Reading{Admin: agentcheck.AdminDrain}},
	}
	for _, g := range good {
		if got, err := ParseContent(g.in); err != nil || got != g.want {
			t.Errorf("ParseContent(%q) = %+v, %v; want %+v", g.in, got, err, g.want)
		}
	}
	for _, bad := range []string{"", "  \n", "101", "150%", "-1", "NaN", "busy", "weight:50", "maxconn:5", "# nothing"} {
		if got, err := ParseContent(bad); err == nil {
			t.Errorf("ParseContent(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestCommand(t *testing.T) {
	ctx := context.Background()
	c, _ := NewShellCommand("echo 42")
	if r, err := c.Read(ctx); err != nil || r.Capacity != 42 {
		t.Fatalf("sh echo 42: %+v %v", r, err)
	}
	c, _ = NewCommand([]string{"/bin/echo", "up 30% drain"})
	if r, err := c.Read(ctx); err != nil || r.Capacity != 30 || r.Admin != agentcheck.AdminDrain {
		t.Fatalf("argv echo: %+v %v", r, err)
	}
	c, _ = NewShellCommand("echo broken >&2; exit 3")
	if _, err := c.Read(ctx); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("failing command: %v", err)
	}
	c, _ = NewCommand([]string{"/nonexistent/capacity"})
	if _, err := c.Read(ctx); err == nil {
		t.Error("missing program: no error")
	}
	if _, err := NewCommand(nil); err == nil {
		t.Error("empty argv accepted")
	}

	// A command that outlives its timeout is killed with its children.
	pidFile := filepath.Join(t.TempDir(), "pid")
	c, _ = NewShellCommand("sleep 30 & echo $! > " + pidFile + "; wait; echo 10")
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Read(tctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow command: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow command returned after %s", d)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	deadline := time.Now().Add(2 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the command's child %d outlived the kill", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(st), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "capacity")
	f, _ := NewFile(p)
	if _, err := f.Read(context.Background()); err == nil {
		t.Error("missing file: no error")
	}
	for content, want := range map[string]float64{"25\n": 25, "up 60%\n": 60} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if r, err := f.Read(context.Background()); err != nil || r.Capacity != want {
			t.Errorf("file %q: %+v %v", content, r, err)
		}
	}
	if err := os.WriteFile(p, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(context.Background()); err == nil {
		t.Error("garbage: no error")
	}
}

func TestHTTP(t *testing.T) {
	var status = http.StatusOK
	body := "80%"
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		if r.Method != http.MethodGet {
			t.Errorf("method %s", r.Method)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	defer close(release)
	h, err := NewHTTP(srv.URL + "/capacity")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := h.Read(context.Background()); err != nil || r.Capacity != 80 {
		t.Fatalf("http: %+v %v", r, err)
	}
	status = http.StatusServiceUnavailable
	if _, err := h.Read(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: %v", err)
	}
	slow, _ := NewHTTP(srv.URL + "/slow")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := slow.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow: %v", err)
	}
	if _, err := NewHTTP("ftp://x"); err == nil {
		t.Error("ftp URL accepted")
	}
}
