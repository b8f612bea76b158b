package announce

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
)

// bird is a BIRD daemon of the test's own, in a private network
// namespace (unshare -n), stopped when the test ends.
type bird struct {
	dir, conf, socket string
	cmd               *exec.Cmd
	b                 *BIRD
}

// startBIRD runs Debian's bird with a bird.conf that includes the
// announcer's file. Without bird installed the test is skipped, except
// in CI, where it fails.
func startBIRD(t *testing.T) *bird {
	t.Helper()
	kerneltest.NeedRoot(t)
	for _, p := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (scripts/install-deps.sh installs bird2)", p)
			}
			t.Skipf("%s is not installed", p)
		}
	}
	dir := t.TempDir()
	bd := &bird{dir: dir, conf: filepath.Join(dir, "bird.conf"), socket: filepath.Join(dir, "bird.ctl")}
	bd.b = &BIRD{IncludeFile: filepath.Join(dir, "vips.conf"), Birdc: "birdc", Socket: bd.socket, Timeout: 3 * time.Second}
	bd.writeConf(t, "")
	if err := os.WriteFile(bd.b.IncludeFile, Render(nil), 0o644); err != nil {
		t.Fatal(err)
	}
	bd.cmd = exec.Command("unshare", "-n", "bird", "-f", "-c", bd.conf, "-s", bd.socket)
	bd.cmd.Stdout, bd.cmd.Stderr = os.Stderr, os.Stderr
	if err := bd.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = bd.cmd.Process.Signal(syscall.SIGCONT)
		_ = bd.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = bd.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = bd.cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(bd.socket); err == nil {
			if _, err := bd.b.Status(context.Background()); err == nil {
				return bd
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("bird did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (bd *bird) writeConf(t *testing.T, extra string) {
	t.Helper()
	conf := "router id 10.255.0.1;\nprotocol device {}\ninclude \"" + bd.b.IncludeFile + "\";\n" + extra
	if err := os.WriteFile(bd.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// routes is what BIRD's routing tables hold from the include file.
func (bd *bird) routes(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("birdc", "-s", bd.socket, "show", "route", "protocol", Proto4).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Network not found") {
		t.Fatalf("show route: %v: %s", err, out)
	}
	out6, _ := exec.Command("birdc", "-s", bd.socket, "show", "route", "protocol", Proto6).CombinedOutput()
	return string(out) + string(out6)
}

func TestRender(t *testing.T) {
	got := string(Render([]netip.Addr{netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("::ffff:192.0.2.10")}))
	for _, want := range []string{
		"protocol static lvs_node4 {\n\tipv4;\n\troute 192.0.2.10/32 blackhole;\n\troute 192.0.2.20/32 blackhole;\n}\n",
		"protocol static lvs_node6 {\n\tipv6;\n\troute 2001:db8::10/128 blackhole;\n}\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("render lacks\n%s\nin\n%s", want, got)
		}
	}
}

func TestAnnounceWithBIRD(t *testing.T) {
	bd := startBIRD(t)
	ctx := context.Background()
	v, err := bd.b.Status(ctx)
	if err != nil || !strings.HasPrefix(v, "BIRD 2.") {
		t.Fatalf("status %q, %v", v, err)
	}
	vips := []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}
	if err := bd.b.Announce(ctx, vips); err != nil {
		t.Fatal(err)
	}
	if r := bd.routes(t); !strings.Contains(r, "192.0.2.10/32") || !strings.Contains(r, "2001:db8::10/128") {
		t.Fatalf("BIRD routes after announce:\n%s", r)
	}
	// The same set again is not sent to BIRD: nothing to re-read.
	before, _ := os.Stat(bd.b.IncludeFile)
	if err := bd.b.Announce(ctx, vips); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(bd.b.IncludeFile); !after.ModTime().Equal(before.ModTime()) {
		t.Error("unchanged set rewrote the include file")
	}
	if err := bd.b.Announce(ctx, vips[:1]); err != nil {
		t.Fatal(err)
	}
	if r := bd.routes(t); !strings.Contains(r, "192.0.2.10/32") || strings.Contains(r, "2001:db8::10") {
		t.Fatalf("BIRD routes after dropping the IPv6 VIP:\n%s", r)
	}
	if err := bd.b.Announce(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if r := bd.routes(t); strings.Contains(r, "192.0.2.10") {
		t.Fatalf("BIRD routes after withdrawing all:\n%s", r)
	}
	if m, _ := filepath.Glob(filepath.Join(bd.dir, ".vips.conf.*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
	if fi, _ := os.Stat(bd.b.IncludeFile); fi.Mode().Perm() != 0o644 {
		t.Errorf("include file mode %v: BIRD runs as its own user and must read it", fi.Mode())
	}
}

// A bird.conf broken by someone else: configure is refused, so a
// withdrawal falls back to disabling the protocols, and the next
// announcement (once the file is fixed) enables them again.
func TestAnnounceBrokenBIRDConf(t *testing.T) {
	bd := startBIRD(t)
	ctx := context.Background()
	vip := []netip.Addr{netip.MustParseAddr("192.0.2.10")}
	if err := bd.b.Announce(ctx, vip); err != nil {
		t.Fatal(err)
	}
	bd.writeConf(t, "this is not bird {\n")
	err := bd.b.Announce(ctx, vip[:0])
	if err == nil || !strings.Contains(err.Error(), "BIRD refused") || !strings.Contains(err.Error(), "disabling") {
		t.Fatalf("withdraw with a broken bird.conf: %v", err)
	}
	if r := bd.routes(t); strings.Contains(r, "192.0.2.10") {
		t.Fatalf("VIP still announced after the fallback:\n%s", r)
	}
	// Announcing needs a re-read: refused while the file is broken.
	if err := bd.b.Announce(ctx, vip); err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("announce with a broken bird.conf: %v", err)
	}
	bd.writeConf(t, "")
	if err := bd.b.Announce(ctx, vip); err != nil {
		t.Fatal(err)
	}
	if r := bd.routes(t); !strings.Contains(r, "192.0.2.10/32") {
		t.Fatalf("VIP not announced again after the fix:\n%s", r)
	}
}

// BIRD missing, stopped (SIGSTOP: the socket accepts but nothing
// answers) or birdc missing: clear errors within the timeout.
func TestAnnounceBIRDNotAnswering(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := &BIRD{IncludeFile: filepath.Join(dir, "vips.conf"), Birdc: "birdc", Socket: filepath.Join(dir, "none.ctl"), Timeout: time.Second}
	if _, err := exec.LookPath("birdc"); err == nil {
		if err := b.Announce(ctx, nil); err == nil || !strings.Contains(err.Error(), "BIRD is not running") {
			t.Errorf("no BIRD: %v", err)
		}
		if _, err := b.Status(ctx); err == nil || !strings.Contains(err.Error(), "not listening on") {
			t.Errorf("status without BIRD: %v", err)
		}
	}
	b.Birdc = filepath.Join(dir, "no-birdc")
	if err := b.Announce(ctx, nil); err == nil || !strings.Contains(err.Error(), "is not installed") {
		t.Errorf("no birdc: %v", err)
	}

	bd := startBIRD(t)
	if err := bd.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	bd.b.Timeout = 500 * time.Millisecond
	start := time.Now()
	err := bd.b.Announce(ctx, []netip.Addr{netip.MustParseAddr("192.0.2.10")})
	if err == nil || !strings.Contains(err.Error(), "did not answer within") {
		t.Errorf("stopped BIRD: %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("stopped BIRD held Announce for %v", took)
	}
	if err := bd.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// After a failure the set is sent again, not taken as applied.
	bd.b.Timeout = 3 * time.Second
	if err := bd.b.Announce(ctx, []netip.Addr{netip.MustParseAddr("192.0.2.10")}); err != nil {
		t.Fatal(err)
	}
	if r := bd.routes(t); !strings.Contains(r, "192.0.2.10/32") {
		t.Fatalf("not announced after BIRD resumed:\n%s", r)
	}
}

// BIRD up, but bird.conf does not include the file: Status says so.
func TestStatusWithoutInclude(t *testing.T) {
	bd := startBIRD(t)
	if err := os.WriteFile(bd.conf, []byte("router id 10.255.0.1;\nprotocol device {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("birdc", "-s", bd.socket, "configure").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := bd.b.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "does bird.conf include") {
		t.Errorf("status: %v", err)
	}
}

// BIRD may re-read its configuration at any moment (its own reload, an
// operator's birdc configure): the include file is always one whole
// rendering, never half of one.
func TestIncludeFileNeverHalfWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vips.conf")
	a := Render([]netip.Addr{netip.MustParseAddr("192.0.2.10")})
	var many []netip.Addr
	for i := range 200 {
		many = append(many, netip.AddrFrom4([4]byte{198, 51, byte(i / 250), byte(i%250 + 1)}))
	}
	b := Render(many)
	if err := writeAtomic(path, a); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	bad := make(chan string, 1)
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			got, err := os.ReadFile(path)
			if err != nil || (string(got) != string(a) && string(got) != string(b)) {
				select {
				case bad <- fmt.Sprintf("read %d bytes, %v", len(got), err):
				default:
				}
				return
			}
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
			select {
			case m := <-bad:
				t.Fatalf("a reader saw a partial include file: %s", m)
			default:
			}
			return
		default:
		}
		data := a
		if i%2 == 1 {
			data = b
		}
		if err := writeAtomic(path, data); err != nil {
			t.Fatal(err)
		}
	}
}
