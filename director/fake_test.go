package director

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// fakeKernel is an in-memory IPVS table that enforces the kernel's rules
// for each operation, fails the way the netlink client does (an
// *ipvs.OpError carrying the kernel's errno) and prints itself as
// ipvsadm-save lines.
type fakeKernel struct {
	mu       sync.Mutex
	svcs     map[ipvs.ServiceKey]*ipvs.ServiceEntry
	applied  int   // operations applied in total
	calls    int   // Apply calls
	tables   int   // Table calls
	failAt   int   // when > 0, the failAt-th operation of the next Apply fails
	tableErr error // returned by Table when set
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{svcs: map[ipvs.ServiceKey]*ipvs.ServiceEntry{}}
}

// kernelKey stores firewall-mark services the way the kernel reports them:
// protocol TCP, no address.
func kernelKey(k ipvs.ServiceKey) ipvs.ServiceKey {
	if k.FWMark != 0 {
		return ipvs.ServiceKey{Family: k.Family, Protocol: ipvs.TCP, FWMark: k.FWMark}
	}
	return k
}

func (f *fakeKernel) Table(context.Context) (*ipvs.Table, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tables++
	if f.tableErr != nil {
		return nil, f.tableErr
	}
	return f.dump(), nil
}

// dump copies the table, sorted; the caller holds f.mu.
func (f *fakeKernel) dump() *ipvs.Table {
	t := &ipvs.Table{}
	for _, s := range f.svcs {
		c := *s
		c.Dests = slices.Clone(s.Dests)
		sort.Slice(c.Dests, func(i, j int) bool {
			a, b := c.Dests[i].DestKey, c.Dests[j].DestKey
			if a.Addr != b.Addr {
				return a.Addr.Less(b.Addr)
			}
			return a.Port < b.Port
		})
		t.Services = append(t.Services, c)
	}
	sort.Slice(t.Services, func(i, j int) bool {
		return compareKeys(t.Services[i].ServiceKey, t.Services[j].ServiceKey) < 0
	})
	return t
}

func (f *fakeKernel) Apply(_ context.Context, ops []ipvs.Op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	for i, op := range ops {
		if f.failAt > 0 && i == f.failAt-1 {
			f.failAt = 0
			return &ipvs.OpError{Index: i, Op: op, Err: fmt.Errorf("injected failure: %w", syscall.EIO), Sent: i + 1}
		}
		if err := f.apply(op); err != nil {
			return &ipvs.OpError{Index: i, Op: op, Err: err, Sent: i + 1}
		}
		f.applied++
	}
	return nil
}

func (f *fakeKernel) apply(op ipvs.Op) error {
	k := kernelKey(op.Service.ServiceKey)
	s := f.svcs[k]
	switch op.Kind {
	case ipvs.AddService, ipvs.EditService:
		if op.Kind == ipvs.AddService && s != nil {
			return syscall.EEXIST
		}
		if op.Kind == ipvs.EditService && s == nil {
			return syscall.ESRCH
		}
		if k.Family == afInet6 && (op.Service.Netmask < 1 || op.Service.Netmask > 128) {
			return fmt.Errorf("IPv6 netmask %d: %w", op.Service.Netmask, syscall.EINVAL)
		}
		if op.Service.Scheduler == "" {
			return fmt.Errorf("no scheduler: %w", syscall.EINVAL)
		}
		svc := op.Service
		svc.ServiceKey = k
		svc.Flags |= ipvs.FlagHashed
		if s == nil {
			f.svcs[k] = &ipvs.ServiceEntry{Service: svc}
		} else {
			s.Service = svc
		}
	case ipvs.DelService:
		if s == nil {
			return syscall.ESRCH
		}
		delete(f.svcs, k)
	case ipvs.AddDest, ipvs.EditDest, ipvs.DelDest:
		if s == nil {
			return fmt.Errorf("service %s: %w", k, syscall.ESRCH)
		}
		j := slices.IndexFunc(s.Dests, func(d ipvs.DestEntry) bool { return d.DestKey == op.Dest.DestKey })
		switch op.Kind {
		case ipvs.AddDest:
			if j >= 0 {
				return syscall.EEXIST
			}
			s.Dests = append(s.Dests, ipvs.DestEntry{Destination: op.Dest})
		case ipvs.EditDest:
			if j < 0 {
				return syscall.ENOENT
			}
			s.Dests[j].Destination = op.Dest
		case ipvs.DelDest:
			if j < 0 {
				return syscall.ENOENT
			}
			s.Dests = slices.Delete(s.Dests, j, j+1)
		}
	default:
		return fmt.Errorf("unknown operation %d", op.Kind)
	}
	return nil
}

// String prints the table as ipvsadm-save -n lines, services sorted.
func (f *fakeKernel) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return FormatTable(f.dump())
}

// run applies ipvsadm-style changes by hand, the way an operator would.
func (f *fakeKernel) run(ops ...ipvs.Op) {
	if err := f.Apply(context.Background(), ops); err != nil {
		panic(err)
	}
}

type fakeMarker struct {
	rules   []MarkRule
	exists  bool
	sets    int
	failSet error
}

func (m *fakeMarker) Set(rules []MarkRule) error {
	if m.failSet != nil {
		return m.failSet
	}
	m.rules = slices.Clone(rules)
	m.exists = true
	m.sets++
	return nil
}

func (m *fakeMarker) Delete() error {
	m.rules, m.exists = nil, false
	return nil
}

// String prints one nft-like line per rule.
func (m *fakeMarker) String() string {
	var b strings.Builder
	if !m.exists {
		return ""
	}
	for _, r := range m.rules {
		ports := make([]string, len(r.Ports))
		for i, p := range r.Ports {
			ports[i] = fmt.Sprint(p)
		}
		fmt.Fprintf(&b, "%s daddr %s %s dport {%s} mark set %d\n", r.Name, r.VIP, r.Protocol, strings.Join(ports, ","), r.Mark)
	}
	return b.String()
}

type fakeSysctls struct {
	vals  map[string]string
	orig  map[string]string
	order []string
}

func newFakeSysctls(initial map[string]string) *fakeSysctls {
	return &fakeSysctls{vals: initial, orig: map[string]string{}}
}

func (s *fakeSysctls) Set(key, value string) error {
	if _, ok := s.vals[key]; !ok {
		return fmt.Errorf("%s: no such file or directory", key)
	}
	if _, ok := s.orig[key]; !ok {
		s.orig[key] = s.vals[key]
		s.order = append(s.order, key)
	}
	s.vals[key] = value
	return nil
}

func (s *fakeSysctls) Restore() error {
	for _, k := range s.order {
		s.vals[k] = s.orig[k]
	}
	s.orig, s.order = map[string]string{}, nil
	return nil
}

// String prints every value as sysctl -w lines, sorted by key.
func (s *fakeSysctls) String() string {
	keys := make([]string, 0, len(s.vals))
	for k := range s.vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "sysctl -w %s=%s\n", strings.ReplaceAll(k, "/", "."), s.vals[k])
	}
	return b.String()
}

type fakeAddrs struct {
	addrs map[string][]netip.Addr
}

func (a *fakeAddrs) AddAddr(ifname string, ip netip.Addr) error {
	if a.addrs == nil {
		a.addrs = map[string][]netip.Addr{}
	}
	if !slices.Contains(a.addrs[ifname], ip) {
		a.addrs[ifname] = append(a.addrs[ifname], ip)
	}
	return nil
}

func (a *fakeAddrs) DelAddr(ifname string, ip netip.Addr) error {
	a.addrs[ifname] = slices.DeleteFunc(a.addrs[ifname], func(x netip.Addr) bool { return x == ip })
	return nil
}

// String prints ip addr add lines.
func (a *fakeAddrs) String() string {
	var lines []string
	for ifname, ips := range a.addrs {
		for _, ip := range ips {
			lines = append(lines, fmt.Sprintf("ip addr add %s dev %s", netip.PrefixFrom(ip, ip.BitLen()), ifname))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
