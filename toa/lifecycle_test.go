package toa_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
	"github.com/lvs-node/lvs-node/toa"
	"github.com/lvs-node/lvs-node/toa/format"
	"github.com/lvs-node/lvs-node/toa/toatest"
)

var (
	bal    = netip.MustParseAddr("192.0.2.1")
	srv    = netip.MustParseAddr("198.51.100.10")
	client = netip.MustParseAddrPort("203.0.113.7:40001")
	trust  = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/25")}
)

// hookCount is how many hooks eBPF TOA attaches: getpeername4,
// getpeername6, getsockopt, release and sockops.
const hookCount = 5

func TestAttachBadInput(t *testing.T) {
	kerneltest.NeedRoot(t)
	pin := toatest.PinDir(t)
	unified, err := toa.UnifiedCgroup(toa.Options{})
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(unified, "lvs-toa-does-not-exist")
	_, err = toa.Attach(toa.Config{Cgroup: missing}, toa.Options{PinDir: pin})
	if !errors.Is(err, toa.ErrNoCgroup) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing cgroup: %v", err)
	}
	_, err = toa.Attach(toa.Config{Cgroup: os.TempDir()}, toa.Options{PinDir: pin})
	if !errors.Is(err, toa.ErrNoCgroup) || !strings.Contains(err.Error(), "cgroup v2") {
		t.Errorf("not a cgroup: %v", err)
	}
	noBPF := filepath.Join(t.TempDir(), "pins")
	_, err = toa.Attach(toa.Config{}, toa.Options{PinDir: noBPF})
	if !errors.Is(err, toa.ErrNoBPFFS) || !strings.Contains(err.Error(), "mount -t bpf") {
		t.Errorf("no bpffs: %v", err)
	}
	if _, err := os.Stat(pin); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused attach left %s: %v", pin, err)
	}
	if _, err := os.Stat(noBPF); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused attach made %s", noBPF)
	}
}

// revealed connects once and reports whether accept() saw the client.
func revealed(t *testing.T, lab *toa.Lab) bool {
	t.Helper()
	s, err := lab.Connect(toa.Conn{Listen: toa.ListenIPv4, Server: srv, Balancer: bal})
	if err != nil {
		t.Error(err)
		return false
	}
	return s.Accept == client && s.Peer == client
}

func setup(t *testing.T) (*toa.Lab, toatest.Env) {
	env := toatest.Env{PinDir: toatest.PinDir(t)}
	lab := toatest.Setup(t, env)
	opt, _ := format.Encode(format.K254, client)
	if err := lab.Inject(toa.InACK, opt); err != nil {
		t.Fatal(err)
	}
	return lab, env
}

func attach(t *testing.T, lab *toa.Lab, env toatest.Env) []string {
	t.Helper()
	ch, err := toa.Attach(toa.Config{Cgroup: lab.Cgroup, Trusted: trust}, toa.Options{PinDir: env.PinDir})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestRestartUnderTraffic replaces the programs (as a restarted agent
// with new programs does) while connections arrive: none may miss the
// address.
func TestRestartUnderTraffic(t *testing.T) {
	lab, env := setup(t)
	attach(t, lab, env)
	if ch := attach(t, lab, env); len(ch) != 0 {
		t.Fatalf("a second attach with the same configuration changed %v", ch)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	total, missed := 0, 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ok := revealed(t, lab)
			mu.Lock()
			total++
			if !ok {
				missed++
			}
			mu.Unlock()
		}
	}()
	for range 5 {
		time.Sleep(20 * time.Millisecond)
		// Pretend the pinned programs are of another version.
		m, err := ebpf.LoadPinnedMap(filepath.Join(env.PinDir, "toa_meta"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Put(uint32(0), [32]byte{}); err != nil {
			t.Fatal(err)
		}
		m.Close()
		ch := attach(t, lab, env)
		if !slices.Contains(ch, "replace sockops on "+lab.Cgroup) || slices.ContainsFunc(ch, func(s string) bool { return strings.HasPrefix(s, "attach ") }) {
			t.Fatalf("changes %v: want the programs replaced in place", ch)
		}
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d connections during 5 replacements", total)
	if missed > 0 || total < 5 {
		t.Fatalf("%d of %d connections missed the address", missed, total)
	}
}

func TestAttachRepairsAndDetachIsIdempotent(t *testing.T) {
	lab, env := setup(t)
	attach(t, lab, env)
	// A link pin removed by hand detaches that hook: accept() shows the
	// balancer again until the next attach repairs it.
	if err := os.Remove(filepath.Join(env.PinDir, "link_getpeername4")); err != nil {
		t.Fatal(err)
	}
	// The kernel releases an unpinned link later, from a work queue:
	// wait (bounded) for the hook to go.
	deadline := time.Now().Add(5 * time.Second)
	for revealed(t, lab) {
		if time.Now().After(deadline) {
			t.Fatal("address still revealed 5 s after the getpeername4 link was unpinned")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ch := attach(t, lab, env)
	if !slices.Contains(ch, "attach getpeername4 to "+lab.Cgroup) {
		t.Fatalf("repair: %v", ch)
	}
	if !revealed(t, lab) {
		t.Fatal("not revealed after the repair")
	}
	// Trusted prefixes change in place.
	ch, err := toa.Attach(toa.Config{Cgroup: lab.Cgroup, Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, toa.Options{PinDir: env.PinDir})
	if err != nil || !slices.Equal(ch, []string{"trust 10.0.0.0/8", "distrust 192.0.2.0/25"}) {
		t.Fatalf("retrust: %v %v", ch, err)
	}
	if revealed(t, lab) {
		t.Fatal("revealed from a source no longer trusted")
	}
	st, err := toa.ReadStatus(toa.Options{PinDir: env.PinDir})
	if err != nil || !st.Attached || len(st.Hooks) != hookCount || st.Hooks[0].Cgroup != lab.Cgroup || !slices.Equal(st.Trusted, []string{"10.0.0.0/8"}) {
		t.Fatalf("status %+v %v", st, err)
	}
	if _, err := toa.Detach(toa.Options{PinDir: env.PinDir}); err != nil {
		t.Fatal(err)
	}
	if ch, err := toa.Detach(toa.Options{PinDir: env.PinDir}); err != nil || len(ch) != 0 {
		t.Fatalf("second detach: %v %v", ch, err)
	}
	if revealed(t, lab) {
		t.Fatal("revealed after detach")
	}
}

// TestDetachIsImmediate: when Detach returns, no program of eBPF TOA is
// left on the cgroup and accept() shows the balancer again, even while
// another process holds the links open (as a bpftool listing does). The
// kernel releases an unpinned link only with its last reference, and then
// from a work queue: removing the pins alone is not enough.
func TestDetachIsImmediate(t *testing.T) {
	lab, env := setup(t)
	for round := range 5 {
		attach(t, lab, env)
		ids := pinnedProgIDs(t, env.PinDir)
		var held []link.Link
		if round%2 == 0 {
			paths, _ := filepath.Glob(filepath.Join(env.PinDir, "link_*"))
			for _, p := range paths {
				l, err := link.LoadPinnedLink(p, nil)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, l)
			}
		}
		_, err := toa.Detach(toa.Options{PinDir: env.PinDir})
		left := attachedOf(t, lab.Cgroup, ids)
		for _, l := range held {
			l.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Fatalf("round %d (links held open: %d): programs %v still attached to %s after Detach", round, len(held), left, lab.Cgroup)
		}
		s, err := lab.Connect(toa.Conn{Listen: toa.ListenIPv4, Server: srv, Balancer: bal})
		if err != nil {
			t.Fatal(err)
		}
		if s.Accept == client || s.Peer == client {
			t.Fatalf("round %d: the address was revealed after Detach (accept %s, getpeername %s)", round, s.Accept, s.Peer)
		}
	}
}

// TestLabServerCgroup: with a server cgroup, the lab's listeners are made
// there and the accepted sockets are the server cgroup's: eBPF TOA
// attached to it alone reveals the address; the cgroup goes with the lab.
func TestLabServerCgroup(t *testing.T) {
	kerneltest.NeedRoot(t)
	env := toatest.Env{PinDir: toatest.PinDir(t)}
	lab, err := toa.NewLab(toa.LabOptions{Addrs: []netip.Addr{bal, srv}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	server := lab.Server
	defer func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(server); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("server cgroup %s left behind", server)
		}
	}()
	defer toa.Detach(toa.Options{PinDir: env.PinDir})
	if filepath.Dir(server) != lab.Cgroup {
		t.Fatalf("server cgroup %q is not below the lab's %q", server, lab.Cgroup)
	}
	opt, _ := format.Encode(format.K254, client)
	if err := lab.Inject(toa.InACK, opt); err != nil {
		t.Fatal(err)
	}
	if _, err := toa.Attach(toa.Config{Cgroup: server, Trusted: trust}, toa.Options{PinDir: env.PinDir}); err != nil {
		t.Fatal(err)
	}
	if !revealed(t, lab) {
		t.Fatal("not revealed with eBPF TOA on the server cgroup")
	}
	st, err := toa.ReadCounters(toa.Options{PinDir: env.PinDir})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Get("syn_recv_sock_toa"); n != 1 {
		t.Fatalf("syn_recv_sock_toa %d after one connection, want 1", n)
	}
}

// pinnedProgIDs returns the ids of the programs pinned in dir.
func pinnedProgIDs(t *testing.T, dir string) []ebpf.ProgramID {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "prog_*"))
	var ids []ebpf.ProgramID
	for _, p := range paths {
		prog, err := ebpf.LoadPinnedProgram(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := prog.Info()
		prog.Close()
		if err != nil {
			t.Fatal(err)
		}
		if id, ok := info.ID(); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) != hookCount {
		t.Fatalf("%d programs pinned in %s, want %d", len(ids), dir, hookCount)
	}
	return ids
}

// attachedOf returns those of ids the kernel lists as attached to cg.
func attachedOf(t *testing.T, cg string, ids []ebpf.ProgramID) []ebpf.ProgramID {
	t.Helper()
	f, err := os.Open(cg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var left []ebpf.ProgramID
	for _, at := range []ebpf.AttachType{ebpf.AttachCGroupSockOps, ebpf.AttachCgroupInet4GetPeername, ebpf.AttachCgroupInet6GetPeername, ebpf.AttachCGroupGetsockopt} {
		res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: at})
		if err != nil {
			t.Fatalf("query %s: %v", at, err)
		}
		for _, p := range res.Programs {
			if slices.Contains(ids, p.ID) {
				left = append(left, p.ID)
			}
		}
	}
	return left
}

// TestConcurrentAttach: several processes' worth of attaches at once end
// in one consistent attachment.
func TestConcurrentAttach(t *testing.T) {
	lab, env := setup(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := toa.Attach(toa.Config{Cgroup: lab.Cgroup, Trusted: trust}, toa.Options{PinDir: env.PinDir})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := toa.ReadStatus(toa.Options{PinDir: env.PinDir})
	if err != nil || len(st.Hooks) != hookCount || len(st.Problems) != 0 {
		t.Fatalf("status %+v %v", st, err)
	}
	if !revealed(t, lab) {
		t.Fatal("not revealed")
	}
}

// TestVerifySelfTest runs the self-test against eBPF TOA attached to the
// unified root's child cgroup the lab lives in, and without anything
// attached (where it must fail).
func TestVerifySelfTest(t *testing.T) {
	kerneltest.NeedRoot(t)
	pin := toatest.PinDir(t)
	unified, err := toa.UnifiedCgroup(toa.Options{})
	if err != nil {
		t.Fatal(err)
	}
	parent := filepath.Join(unified, "lvs-toa-verify-parent")
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(parent) })
	rep, err := toa.Verify(toa.VerifyOptions{Options: toa.Options{PinDir: pin}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pass {
		t.Fatalf("verify passed with nothing attached:\n%s", rep.Text())
	}
	if _, err := toa.Attach(toa.Config{Cgroup: parent, Trusted: trust}, toa.Options{PinDir: pin}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { toa.Detach(toa.Options{PinDir: pin}) })
	rep, err = toa.Verify(toa.VerifyOptions{Options: toa.Options{PinDir: pin}})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.Text())
	if !rep.Pass || len(rep.Cases) != 3 || rep.Cases[2].Skipped == "" {
		t.Fatalf("verify:\n%s", rep.Text())
	}
	ents, _ := os.ReadDir(parent)
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("verify left cgroup %s", e.Name())
		}
	}
}

// TestMoveDetachesTheOldCgroupAtOnce: attaching to another cgroup moves
// the hooks; the old cgroup has none left when Attach returns, even while
// something else holds the old links open (the kernel would otherwise
// release them later).
func TestMoveDetachesTheOldCgroupAtOnce(t *testing.T) {
	lab, env := setup(t)
	attach(t, lab, env)
	ids := pinnedProgIDs(t, env.PinDir)
	paths, _ := filepath.Glob(filepath.Join(env.PinDir, "link_*"))
	var held []link.Link
	for _, p := range paths {
		l, err := link.LoadPinnedLink(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
	}
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	other := filepath.Join(lab.Cgroup, "moved")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = toa.Detach(toa.Options{PinDir: env.PinDir})
		_ = os.Remove(other)
	})
	ch, err := toa.Attach(toa.Config{Cgroup: other, Trusted: trust}, toa.Options{PinDir: env.PinDir})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ch, "move getpeername4 to "+other) {
		t.Fatalf("changes %v: want the hooks moved", ch)
	}
	if left := attachedOf(t, lab.Cgroup, ids); len(left) != 0 {
		t.Fatalf("programs %v still attached to the old cgroup %s after the move", left, lab.Cgroup)
	}
}
