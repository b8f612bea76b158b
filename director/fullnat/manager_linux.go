package fullnat

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/lvs-node/lvs-node/director/fullnat/internal/egress"
)

// Options say where the kernel side lives.
type Options struct {
	// Table names lvs-node's nftables tables ("ip Table", "ip6 Table").
	Table string
	// PinDir is the BPF file system directory of the egress program
	// (DefaultPinDir when empty).
	PinDir string
}

func (o Options) pinDir() string {
	if o.PinDir == "" {
		return DefaultPinDir
	}
	return o.PinDir
}

// Manager makes the kernel hold a Spec and removes what it added. Its
// methods are safe for concurrent use. Its sockets belong to the
// network namespace of the thread that called Open.
type Manager struct {
	opts Options
	mu   sync.Mutex
	nat  *natTables
	// last is the spec last applied in full; Apply with the same spec
	// and no verify does nothing.
	last   Spec
	lastOK bool
	// stats is the counters' map once the program is in place. It has a
	// lock of its own: a scrape never waits for Apply.
	statsMu sync.RWMutex
	stats   *ebpf.Map
}

// Open prepares a Manager; it changes nothing in the kernel.
func Open(opts Options) (*Manager, error) {
	if opts.Table == "" {
		return nil, errors.New("full-NAT needs an nftables table name")
	}
	n, err := openNAT(opts.Table)
	if err != nil {
		return nil, err
	}
	return &Manager{opts: opts, nat: n}, nil
}

// Close releases the sockets and maps; the kernel keeps what was added.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setStats(nil)
	return m.nat.close()
}

// setStats replaces the counters' map (nil: none).
func (m *Manager) setStats(st *ebpf.Map) {
	m.statsMu.Lock()
	defer m.statsMu.Unlock()
	if m.stats != nil {
		m.stats.Close()
	}
	m.stats = st
}

// Apply makes the kernel hold spec: the source NAT rules, and the egress
// program on the interfaces towards the real servers with the local
// addresses' TOA formats. rec is what lvs-node added before (from the
// state file); it is updated, and save is called to keep it, before each
// addition, so that a crash orphans nothing. Without verify, a spec the
// last Apply put in place in full is taken as still there (the engine's
// quick path); with verify, the kernel is read and drift is repaired.
// It returns the changes made.
func (m *Manager) Apply(spec Spec, rec *Record, save func() error, verify bool) ([]string, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !verify && m.lastOK && spec.Equal(m.last) {
		return nil, nil
	}
	m.lastOK = false
	var changes []string
	note := func(f string, args ...any) { changes = append(changes, fmt.Sprintf(f, args...)) }

	// Source NAT first: creating a NAT chain also loads conntrack, which
	// the program's lookup needs.
	if rec.NFTable != "" && rec.NFTable != m.opts.Table {
		old, err := openNAT(rec.NFTable)
		if err != nil {
			return changes, err
		}
		c, err := old.remove()
		old.close()
		changes = append(changes, c...)
		if err != nil {
			return changes, err
		}
		rec.NFTable = ""
		if err := save(); err != nil {
			return changes, err
		}
	}
	if !spec.Empty() && rec.NFTable == "" {
		rec.NFTable = m.opts.Table
		if err := save(); err != nil {
			return changes, err
		}
	}
	if rec.NFTable != "" {
		c, err := m.nat.set(spec)
		changes = append(changes, c...)
		if err != nil {
			return changes, err
		}
		if spec.Empty() {
			rec.NFTable = ""
			if err := save(); err != nil {
				return changes, err
			}
		}
	}

	if spec.WritesTOA() {
		if err := m.applyProgram(spec, rec, save, note); err != nil {
			return changes, err
		}
	} else if err := m.removeProgram(rec, save, note); err != nil {
		return changes, err
	}
	m.last, m.lastOK = spec, true
	return changes, nil
}

func (m *Manager) applyProgram(spec Spec, rec *Record, save func() error, note func(string, ...any)) error {
	dir := m.opts.pinDir()
	if rec.PinDir != "" && rec.PinDir != dir {
		if err := m.removeProgram(rec, save, note); err != nil {
			return err
		}
	}
	// The interfaces first: a real server without a route changes
	// nothing.
	ifaces, err := routeInterfaces(spec.RealServers())
	if err != nil {
		return err
	}
	if rec.PinDir == "" {
		rec.PinDir = dir
		if err := save(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pin directory: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := loadProgram(dir, note)
	if err != nil {
		return err
	}
	defer p.close()
	// The addresses before the hooks, so that a new hook acts at once.
	if err := p.configure(spec, note); err != nil {
		return err
	}
	record := func(h Hook) error {
		if old, ok := rec.hook(h.Ifindex); ok && old == h {
			return nil
		}
		rec.setHook(h)
		return save()
	}
	for _, i := range ifaces {
		old, have := rec.hook(i.index)
		if have && old.Interface != i.name {
			// The index was reused by another interface: forget the
			// old one, whose hook went with it.
			rec.dropHook(i.index)
			have = false
		}
		msg, err := attach(dir, i, p, old, have, record)
		if err != nil {
			return err
		}
		if msg != "" {
			note("%s", msg)
		}
	}
	for _, h := range slices.Clone(rec.Hooks) {
		if slices.ContainsFunc(ifaces, func(i iface) bool { return i.index == h.Ifindex && i.name == h.Interface }) {
			continue
		}
		msg, err := detach(dir, h)
		if err != nil {
			return err
		}
		if msg != "" {
			note("%s", msg)
		}
		rec.dropHook(h.Ifindex)
		if err := save(); err != nil {
			return err
		}
	}
	m.statsMu.RLock()
	have := m.stats != nil
	m.statsMu.RUnlock()
	if !have {
		st, err := p.maps[egress.MapStats].Clone()
		if err != nil {
			return err
		}
		m.setStats(st)
	}
	return nil
}

// removeProgram detaches the egress program from every recorded
// interface and removes its pins.
func (m *Manager) removeProgram(rec *Record, save func() error, note func(string, ...any)) error {
	if rec.PinDir == "" && len(rec.Hooks) == 0 {
		return nil
	}
	dir := rec.PinDir
	if dir == "" {
		dir = m.opts.pinDir()
	}
	for _, h := range slices.Clone(rec.Hooks) {
		msg, err := detach(dir, h)
		if err != nil {
			return err
		}
		if msg != "" {
			note("%s", msg)
		}
		rec.dropHook(h.Ifindex)
		if err := save(); err != nil {
			return err
		}
	}
	m.setStats(nil)
	if err := removePins(dir); err != nil {
		return fmt.Errorf("remove pins in %s: %w", dir, err)
	}
	note("remove pins in %s", dir)
	rec.PinDir = ""
	return save()
}

// Remove takes away everything rec records: the egress program's hooks
// and pins and the nftables tables. Connections already translated keep
// their translation in conntrack until they end.
func (m *Manager) Remove(rec *Record, save func() error) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastOK = false
	var changes []string
	note := func(f string, args ...any) { changes = append(changes, fmt.Sprintf(f, args...)) }
	if err := m.removeProgram(rec, save, note); err != nil {
		return changes, err
	}
	if rec.NFTable == "" {
		return changes, nil
	}
	n := m.nat
	if rec.NFTable != m.opts.Table {
		var err error
		if n, err = openNAT(rec.NFTable); err != nil {
			return changes, err
		}
		defer n.close()
	}
	c, err := n.remove()
	changes = append(changes, c...)
	if err != nil {
		return changes, err
	}
	rec.NFTable = ""
	return changes, save()
}

// Counters returns the egress program's counters by name (see
// egress.Counters), summed over CPUs; ok is false while no program is in
// place.
func (m *Manager) Counters() (c map[string]uint64, ok bool, err error) {
	m.statsMu.RLock()
	defer m.statsMu.RUnlock()
	if m.stats == nil {
		return nil, false, nil
	}
	return readCounters(m.stats)
}

func readCounters(stats *ebpf.Map) (map[string]uint64, bool, error) {
	out := map[string]uint64{}
	for i, name := range egress.Counters() {
		var per []uint64
		if err := stats.Lookup(uint32(i), &per); err != nil {
			return nil, false, fmt.Errorf("read counter %s: %w", name, err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[name] = sum
	}
	return out, true, nil
}
