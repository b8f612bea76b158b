package ipvstest

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"syscall"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// Sync is an in-memory set of connection-sync daemons that fails as the
// kernel does: a second daemon of a state is EEXIST, stopping one that
// does not run is ESRCH, an interface the namespace lacks is ENODEV, a
// group that is not multicast EINVAL. A started daemon reports the
// defaults the kernel fills in (group 224.0.0.81, port 8848, TTL 1 and a
// maximum length of the MTU less the IP and UDP headers). Its zero value
// is not usable: call NewSync.
type Sync struct {
	mu      sync.Mutex
	ifaces  map[string]int // name -> MTU
	running map[ipvs.SyncState]ipvs.SyncDaemon
	fail    error // returned by the next call, once
	hold    chan struct{}
	calls   int
}

// NewSync returns a namespace with the given interfaces (MTU 1500) and no
// daemon.
func NewSync(ifaces ...string) *Sync {
	s := &Sync{ifaces: map[string]int{}, running: map[ipvs.SyncState]ipvs.SyncDaemon{}}
	for _, n := range ifaces {
		s.ifaces[n] = 1500
	}
	return s
}

// FailNext makes the next call fail with err.
func (s *Sync) FailNext(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// Hold makes calls wait until release is called or their context ends,
// as a kernel that does not answer.
func (s *Sync) Hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.hold = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.hold = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

// Calls is the number of calls made.
func (s *Sync) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *Sync) enter(ctx context.Context) error {
	s.mu.Lock()
	s.calls++
	ch := s.hold
	s.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.fail
	s.fail = nil
	return err
}

// StartSync starts a daemon.
func (s *Sync) StartSync(ctx context.Context, d ipvs.SyncDaemon) error {
	if err := ipvs.CheckSyncDaemon(d); err != nil {
		return err
	}
	if err := s.enter(ctx); err != nil {
		return fmt.Errorf("start %s sync daemon on %s: %w", d.State, d.Interface, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mtu, ok := s.ifaces[d.Interface]
	var err error
	switch _, dup := s.running[d.State]; {
	case dup:
		err = syscall.EEXIST
	case !ok:
		err = syscall.ENODEV
	}
	if err != nil {
		return fmt.Errorf("start %s sync daemon on %s: %w", d.State, d.Interface, err)
	}
	hlen := 28
	if !d.Group.IsValid() {
		d.Group = netip.AddrFrom4([4]byte{224, 0, 0, 81})
	} else if d.Group.Is6() {
		hlen = 48
	}
	if d.Port == 0 {
		d.Port = 8848
	}
	if d.TTL == 0 {
		d.TTL = 1
	}
	if d.State == ipvs.SyncMaster {
		mtu = 1500
	}
	if d.MaxLen == 0 || int(d.MaxLen) > mtu-hlen {
		d.MaxLen = uint16(mtu - hlen)
	}
	s.running[d.State] = d
	return nil
}

// StopSync stops the daemon of state st.
func (s *Sync) StopSync(ctx context.Context, st ipvs.SyncState) error {
	if err := s.enter(ctx); err != nil {
		return fmt.Errorf("stop %s sync daemon: %w", st, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.running[st]; !ok {
		return fmt.Errorf("stop %s sync daemon: %w", st, syscall.ESRCH)
	}
	delete(s.running, st)
	return nil
}

// SyncDaemons lists the running daemons, master first.
func (s *Sync) SyncDaemons(ctx context.Context) ([]ipvs.SyncDaemon, error) {
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("list sync daemons: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ipvs.SyncDaemon
	for _, st := range []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup} {
		if d, ok := s.running[st]; ok {
			out = append(out, d)
		}
	}
	return out, nil
}
