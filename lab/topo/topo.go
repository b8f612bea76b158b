package topo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Lab is one test's topology.
type Lab struct {
	t      testing.TB
	id     string
	sw     *Host // holds the bridges
	nets   []*Net
	hosts  []*Host
	nextIf int
}

// Net is a network: a bridge in the lab's switch namespace.
type Net struct {
	Name   string
	Prefix netip.Prefix
	bridge string
}

// Link attaches a host to a network with addresses.
type Link struct {
	net   *Net
	addrs []string
}

// On attaches a host to n with the given addresses. An address without a
// prefix length takes the network's.
func On(n *Net, addrs ...string) Link { return Link{net: n, addrs: addrs} }

// Host is a network namespace of the lab.
type Host struct {
	Name   string
	lab    *Lab
	nsName string
	ns     netns.NsHandle
	h      *netlink.Handle
	links  map[*Net]string       // net -> interface name
	addrs  map[*Net][]netip.Addr // net -> addresses
}

// New creates an empty lab that is torn down when the test ends.
func New(t testing.TB) *Lab {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("topo: %v", err)
	}
	l := &Lab{t: t, id: hex.EncodeToString(b)}
	t.Cleanup(l.teardown)
	l.sw = l.newNS("sw")
	return l
}

// ID is the lab's unique id, part of every namespace name.
func (l *Lab) ID() string { return l.id }

func (l *Lab) newNS(name string) *Host {
	l.t.Helper()
	nsName := "lvslab-" + l.id + "-" + name
	ns, err := newNamedNS(nsName)
	if err != nil {
		l.t.Fatalf("topo: namespace %s: %v", name, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		_ = netns.DeleteNamed(nsName)
		l.t.Fatalf("topo: netlink in %s: %v", name, err)
	}
	host := &Host{Name: name, lab: l, nsName: nsName, ns: ns, h: h,
		links: map[*Net]string{}, addrs: map[*Net][]netip.Addr{}}
	l.hosts = append(l.hosts, host)
	if lo, err := h.LinkByName("lo"); err == nil {
		_ = h.LinkSetUp(lo)
	}
	return host
}

// newNamedNS creates a named namespace without moving the calling thread.
func newNamedNS(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return 0, fmt.Errorf("get current namespace: %w", err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		return 0, fmt.Errorf("new namespace: %w", err)
	}
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in the new namespace: keep it locked so
		// that it dies with this goroutine instead of being reused.
		runtime.LockOSThread()
		return 0, fmt.Errorf("restore namespace: %w", err)
	}
	return ns, nil
}

func (l *Lab) teardown() {
	for i := len(l.hosts) - 1; i >= 0; i-- {
		h := l.hosts[i]
		h.h.Close()
		h.ns.Close()
		if err := netns.DeleteNamed(h.nsName); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.t.Errorf("topo: delete namespace %s: %v", h.nsName, err)
		}
	}
	l.hosts = nil
}

// Net creates a network (a bridge) with the given IPv4 or IPv6 prefix.
func (l *Lab) Net(name, cidr string) *Net {
	l.t.Helper()
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		l.t.Fatalf("topo: net %s: %v", name, err)
	}
	n := &Net{Name: name, Prefix: p, bridge: fmt.Sprintf("br%d", len(l.nets))}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.bridge}}
	if err := l.sw.h.LinkAdd(br); err != nil {
		l.t.Fatalf("topo: bridge for %s: %v", name, err)
	}
	if err := l.sw.h.LinkSetUp(br); err != nil {
		l.t.Fatalf("topo: bridge %s up: %v", name, err)
	}
	l.nets = append(l.nets, n)
	return n
}

// Host creates a host attached to the given networks; its interfaces are
// eth0, eth1, ... in the order of links.
func (l *Lab) Host(name string, links ...Link) *Host {
	l.t.Helper()
	h := l.newNS(name)
	for i, ln := range links {
		ifname := fmt.Sprintf("eth%d", i)
		l.nextIf++
		peer := fmt.Sprintf("v%d", l.nextIf)
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: peer},
			PeerName:      ifname,
			PeerNamespace: netlink.NsFd(h.ns),
		}
		if err := l.sw.h.LinkAdd(veth); err != nil {
			l.t.Fatalf("topo: veth for %s: %v", name, err)
		}
		br, err := l.sw.h.LinkByName(ln.net.bridge)
		if err != nil {
			l.t.Fatalf("topo: %v", err)
		}
		sw, err := l.sw.h.LinkByName(peer)
		if err != nil {
			l.t.Fatalf("topo: %v", err)
		}
		if err := l.sw.h.LinkSetMaster(sw, br); err != nil {
			l.t.Fatalf("topo: attach %s to %s: %v", name, ln.net.Name, err)
		}
		if err := l.sw.h.LinkSetUp(sw); err != nil {
			l.t.Fatalf("topo: %v", err)
		}
		link, err := h.h.LinkByName(ifname)
		if err != nil {
			l.t.Fatalf("topo: %v", err)
		}
		for _, a := range ln.addrs {
			p, err := ln.net.prefixFor(a)
			if err != nil {
				l.t.Fatalf("topo: host %s: %v", name, err)
			}
			if p.Addr().Is6() {
				// No duplicate address detection: the address is usable at once.
				h.Sysctl(l.t, "net/ipv6/conf/"+ifname+"/accept_dad", "0")
			}
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
			if p.Addr().Is6() {
				addr.Flags = syscall.IFA_F_NODAD
			}
			if err := h.h.AddrAdd(link, addr); err != nil {
				l.t.Fatalf("topo: address %s on %s: %v", a, name, err)
			}
			h.addrs[ln.net] = append(h.addrs[ln.net], p.Addr())
		}
		if err := h.h.LinkSetUp(link); err != nil {
			l.t.Fatalf("topo: %v", err)
		}
		h.links[ln.net] = ifname
	}
	return h
}

func (n *Net) prefixFor(a string) (netip.Prefix, error) {
	if strings.Contains(a, "/") {
		return netip.ParsePrefix(a)
	}
	addr, err := netip.ParseAddr(a)
	if err != nil {
		return netip.Prefix{}, err
	}
	if addr.Is4() != n.Prefix.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("address %s does not fit net %s (%s): give a prefix length", a, n.Name, n.Prefix)
	}
	return netip.PrefixFrom(addr, n.Prefix.Bits()), nil
}

// NetnsPath is the path of the host's namespace (for nsenter --net=).
func (h *Host) NetnsPath() string { return filepath.Join("/run/netns", h.nsName) }

// NetnsName is the name under /run/netns (for ip -n).
func (h *Host) NetnsName() string { return h.nsName }

// Handle is a netlink handle inside the host's namespace.
func (h *Host) Handle() *netlink.Handle { return h.h }

// Ifname is the host's interface on n.
func (h *Host) Ifname(n *Net) string { return h.links[n] }

// IP is the host's first address on n.
func (h *Host) IP(n *Net) netip.Addr {
	if a := h.addrs[n]; len(a) > 0 {
		return a[0]
	}
	return netip.Addr{}
}

// MAC is the hardware address of the host's interface ifname.
func (h *Host) MAC(t testing.TB, ifname string) net.HardwareAddr {
	t.Helper()
	link, err := h.h.LinkByName(ifname)
	if err != nil {
		t.Fatalf("topo: %s: %v", h.Name, err)
	}
	return link.Attrs().HardwareAddr
}

// Sysctl writes a sysctl of the host's namespace; key is in slash form
// relative to /proc/sys (net/ipv4/ip_forward).
func (h *Host) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	err := h.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("topo: sysctl %s=%s on %s: %v", key, value, h.Name, err)
	}
}

// ReadSysctl reads a sysctl of the host's namespace.
func (h *Host) ReadSysctl(t testing.TB, key string) string {
	t.Helper()
	var v []byte
	err := h.Do(func() error {
		var err error
		v, err = os.ReadFile(filepath.Join("/proc/sys", key))
		return err
	})
	if err != nil {
		t.Fatalf("topo: read sysctl %s on %s: %v", key, h.Name, err)
	}
	return strings.TrimSpace(string(v))
}

// Do runs fn on an OS thread that is inside the host's namespace. Sockets
// fn creates stay in that namespace and may be used from anywhere.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(h.ns); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", h.Name, err)
			return
		}
		err = fn()
		if rerr := netns.Set(orig); rerr == nil {
			runtime.UnlockOSThread()
		} // else: the thread stays locked and exits with the goroutine
		errc <- err
	}()
	return <-errc
}

// Command returns a command that runs name inside the host's namespace.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + h.NetnsPath(), "--", name}, args...)...)
}

// Run runs a command inside the host's namespace and returns its combined
// output. It gives up after two minutes.
func (h *Host) Run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s on %s: %w: %s", name, strings.Join(args, " "), h.Name, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// MustRun is Run that fails the test on error.
func (h *Host) MustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := h.Run(t, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Proc is a background process started on a host.
type Proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// Start runs a command in the background inside the host's namespace. It is
// stopped (SIGTERM, then SIGKILL after 10 s) when the test ends, unless it
// has exited before. Its output is logged with the host's name as lines
// arrive when LVS_LAB_VERBOSE is set, and is always available from Output.
func (h *Host) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	p := &Proc{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = h.Command(context.Background(), name, args...)
	pr, pw := io.Pipe()
	p.cmd.Stdout = pw
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("topo: start %s on %s: %v", name, h.Name, err)
	}
	verbose := os.Getenv("LVS_LAB_VERBOSE") != ""
	prefix := h.Name + "/" + filepath.Base(name)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			p.out.WriteLine(sc.Text())
			if verbose {
				fmt.Fprintf(os.Stderr, "[%s] %s\n", prefix, sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		p.err = p.cmd.Wait()
		pw.Close()
		<-copied
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.Stop(10 * time.Second); err != nil && !p.exitedBySignal() {
			t.Logf("topo: %s on %s ended: %v", name, h.Name, err)
		}
	})
	return p
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for status 0).
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("process %d still running after %s", p.cmd.Process.Pid, timeout)
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to grace, then kills. It returns the exit
// error; stopping an exited process returns how it exited.
func (p *Proc) Stop(grace time.Duration) error {
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	return p.err
}

func (p *Proc) exitedBySignal() bool {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			return ws.Signaled() && ws.Signal() == syscall.SIGTERM
		}
	}
	return false
}

// Output is everything the process printed so far.
func (p *Proc) Output() string { return p.out.String() }

// WaitOutput waits up to timeout for the output to contain s.
func (p *Proc) WaitOutput(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output(), s) {
			return true
		}
		if p.Exited() {
			return strings.Contains(p.Output(), s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) WriteLine(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(line)
	s.b.WriteByte('\n')
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
