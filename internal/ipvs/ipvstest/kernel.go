package ipvstest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvsadm"
)

// Batch is the number of operations the netlink client sends in one
// datagram (the most it sends; the kernel works through a whole datagram
// before it answers).
const Batch = 4096

// Kernel is an in-memory IPVS table that applies operations with the
// kernel's rules (ipvs.ApplyOps) and fails the way ipvs.Client does:
//
//   - an operation that cannot be encoded, or one that names a scheduler
//     or persistence engine whose module is missing, fails the batch
//     before anything is sent (an *ipvs.OpError with Sent 0);
//   - operations go to the kernel Batch at a time; within one datagram the
//     kernel goes on after a failed operation, so the later operations of
//     that datagram take effect; the batch stops after the datagram with
//     an *ipvs.OpError for the first failure and Sent at its end;
//   - a context that ends while a call is held (Hold) gives the
//     context's error, wrapped like the client's;
//   - a kernel older than 5.3 (SetRelease) ignores the tunnel type,
//     port and flags of real servers.
//
// Its zero value is not usable: call New. It is safe for concurrent use.
type Kernel struct {
	mu    sync.Mutex
	table *ipvs.Table
	// missing modules (ip_vs_twos, ip_vs_pe_sip): ops that need them
	// are refused.
	missing map[string]bool
	failAt  map[int]error // op index (counted over all Apply calls) -> error
	hold    chan struct{} // when non-nil, Apply and Table wait for it to close
	tblErr  error
	release string // uname -r

	applied int // operations that took effect, in total
	ops     int // operations handed over, in total
	calls   int // Apply calls
	tables  int // Table calls
}

// New returns an empty kernel in which every module but ip_vs_twos is
// available (as in Debian's 6.1 kernel).
func New() *Kernel {
	return &Kernel{table: &ipvs.Table{}, missing: map[string]bool{ipvs.SchedulerModule("twos"): true}, failAt: map[int]error{},
		release: "6.1.0-test"}
}

// Module says whether the kernel can load module name, as
// ipvs.KernelFiles does for a real one (see SetModule).
func (k *Kernel) Module(name string) (ipvs.Availability, string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.missing[name] {
		return ipvs.Unavailable, "kernel " + k.release + " has no module " + name
	}
	return ipvs.Available, "in the test kernel"
}

// Release returns the kernel's release (uname -r): 6.1.0-test unless
// SetRelease changed it.
func (k *Kernel) Release() (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.release, nil
}

// SetRelease makes the kernel report release, as an older or newer
// kernel would.
func (k *Kernel) SetRelease(release string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.release = release
}

// SetModule makes a module available or missing.
func (k *Kernel) SetModule(name string, available bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if available {
		delete(k.missing, name)
	} else {
		k.missing[name] = true
	}
}

// FailOp makes the op with the given index among all ops handed over from
// now on (0: the next one) fail with err, as the kernel refusing it.
func (k *Kernel) FailOp(n int, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failAt[k.ops+n] = err
}

// FailTable makes Table fail with err (nil: succeed again).
func (k *Kernel) FailTable(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tblErr = err
}

// Hold makes every later Apply and Table call wait until the returned
// function is called or its context ends: a kernel call that is stuck.
func (k *Kernel) Hold() (release func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ch := make(chan struct{})
	k.hold = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			k.mu.Lock()
			if k.hold == ch {
				k.hold = nil
			}
			k.mu.Unlock()
			close(ch)
		})
	}
}

func (k *Kernel) wait(ctx context.Context) error {
	k.mu.Lock()
	ch := k.hold
	k.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Table returns a copy of the table, services and real servers sorted,
// firewall-mark services keyed as the kernel reports them.
func (k *Kernel) Table(ctx context.Context) (*ipvs.Table, error) {
	if err := k.wait(ctx); err != nil {
		return nil, fmt.Errorf("read IPVS table: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tables++
	if k.tblErr != nil {
		return nil, k.tblErr
	}
	return k.dump(), nil
}

// dump copies the table, sorted; the caller holds k.mu.
func (k *Kernel) dump() *ipvs.Table {
	t := k.table.Clone()
	for i := range t.Services {
		s := &t.Services[i]
		s.ServiceKey = ipvs.KernelKey(s.ServiceKey)
		slices.SortFunc(s.Dests, func(a, b ipvs.DestEntry) int { return ipvs.CompareDests(a.DestKey, b.DestKey) })
	}
	slices.SortFunc(t.Services, func(a, b ipvs.ServiceEntry) int { return ipvs.CompareKeys(a.ServiceKey, b.ServiceKey) })
	return t
}

// Apply applies ops the way ipvs.Client.Apply does (see Kernel).
func (k *Kernel) Apply(ctx context.Context, ops []ipvs.Op) error {
	for i, op := range ops {
		if err := ipvs.CheckOp(op); err != nil {
			return &ipvs.OpError{Index: i, Op: op, Err: err}
		}
	}
	if len(ops) == 0 {
		return nil
	}
	k.mu.Lock()
	k.calls++
	for _, m := range ipvs.NeededModules(ops) {
		if k.missing[m.Name] {
			k.mu.Unlock()
			return m.Missing(ops, fmt.Errorf("modprobe %s: exit status 1: modprobe: FATAL: Module %s not found", m.Name, m.Name))
		}
	}
	k.mu.Unlock()
	if err := k.wait(ctx); err != nil {
		return &ipvs.OpError{Index: 0, Op: ops[0], Err: err}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if ok, known := ipvs.TunnelTypesSupported(k.release); known && !ok {
		ops = withoutTunnelTypes(ops)
	}
	for first := 0; first < len(ops); first += Batch {
		end := min(first+Batch, len(ops))
		failed, failErr := -1, error(nil)
		// Injected failures take the op out of the datagram.
		dgram := make([]ipvs.Op, 0, end-first)
		idx := make([]int, 0, end-first)
		for i := first; i < end; i++ {
			if err, ok := k.failAt[k.ops+i]; ok {
				delete(k.failAt, k.ops+i)
				if failed < 0 {
					failed, failErr = i, err
				}
				continue
			}
			dgram = append(dgram, ops[i])
			idx = append(idx, i)
		}
		refusedIn := 0
		k.table = ipvs.ApplyOps(k.table, dgram, func(i int, err error) {
			refusedIn++
			if failed < 0 || idx[i] < failed {
				failed, failErr = idx[i], err
			}
		})
		k.applied += len(dgram) - refusedIn
		if failed >= 0 {
			k.ops += end
			return &ipvs.OpError{Index: failed, Op: ops[failed], Err: failErr, Sent: end}
		}
	}
	k.ops += len(ops)
	return nil
}

// withoutTunnelTypes drops the tunnel type, port and flags of real
// servers, as kernels before 5.3 do (they do not know the attributes).
func withoutTunnelTypes(ops []ipvs.Op) []ipvs.Op {
	out := slices.Clone(ops)
	for i := range out {
		d := &out[i].Dest
		d.TunType, d.TunPort, d.TunFlags = ipvs.TunIPIP, 0, 0
	}
	return out
}

// Run applies changes by hand, the way an operator with ipvsadm would; it
// panics on a refused one.
func (k *Kernel) Run(ops ...ipvs.Op) {
	if err := k.Apply(context.Background(), ops); err != nil {
		panic(err)
	}
}

// Counts are the calls a Kernel has seen.
type Counts struct {
	Applied int // operations that took effect
	Ops     int // operations handed over (sent)
	Calls   int // Apply calls that got past the module check
	Tables  int // Table calls
}

// Counts returns the running totals.
func (k *Kernel) Counts() Counts {
	k.mu.Lock()
	defer k.mu.Unlock()
	return Counts{Applied: k.applied, Ops: k.ops, Calls: k.calls, Tables: k.tables}
}

// String prints the table as ipvsadm-save -n lines, in ipvsadm's order.
func (k *Kernel) String() string {
	k.mu.Lock()
	t := k.dump()
	k.mu.Unlock()
	var b strings.Builder
	_ = ipvsadm.WriteSave(&b, t)
	return b.String()
}

// ErrInjected is the error FailOp is usually given: the kernel refusing an
// operation for a reason of its own.
var ErrInjected = fmt.Errorf("injected failure: %w", syscall.EIO)

// SetConns gives a real server connection counters, as traffic would:
// conns connections in all, that many active, added to its service's total.
func (k *Kernel) SetConns(svc ipvs.ServiceKey, d ipvs.DestKey, conns uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.table.Clone()
	for i := range t.Services {
		s := &t.Services[i]
		if ipvs.NormKey(s.ServiceKey) != ipvs.NormKey(svc) {
			continue
		}
		s.Stats.Conns += conns
		for j := range s.Dests {
			if s.Dests[j].DestKey == d {
				s.Dests[j].Stats.Conns = conns
				s.Dests[j].ActiveConns = uint32(conns)
			}
		}
	}
	k.table = t
}
