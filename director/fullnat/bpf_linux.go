package fullnat

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/director/fullnat/internal/egress"
	"github.com/lvs-node/lvs-node/internal/state"
)

// DefaultPinDir is where the egress program, its maps and its tcx links
// are pinned.
const DefaultPinDir = "/sys/fs/bpf/lvs-node/fullnat"

// Pins in the pin directory.
const (
	progPinName = "prog_egress"
	metaPinName = "fullnat_meta"
	linkPrefix  = "link_"
)

// sharedMaps are pinned and outlive program replacements: the local
// addresses, the connections between SYN and first data, the counters.
func sharedMaps() []string { return []string{egress.MapLaddrs, egress.MapConns, egress.MapStats} }

// ErrKernel is returned when the kernel lacks what full-NAT needs.
var ErrKernel = errors.New("the kernel lacks what full-NAT needs")

// program is the egress program and its maps, loaded or taken from the
// pins.
type program struct {
	prog  *ebpf.Program
	maps  map[string]*ebpf.Map
	fresh bool // loaded now: hooks must move to it
}

func (p *program) close() {
	if p.prog != nil {
		p.prog.Close()
	}
	for _, m := range p.maps {
		m.Close()
	}
}

// lockWait bounds the wait for another process's change.
const lockWait = 30 * time.Second

// lockDir takes the exclusive lock of the pin directory, so that two
// processes (the daemon and "director down") never interleave changes.
func lockDir(dir string) (func(), error) { return state.LockDir(dir, lockWait) }

// loadProgram returns the egress program of this build: the pinned one
// when it is this build's and its maps are in place, else a new one
// (reusing the pinned maps that still fit), pinned in dir.
func loadProgram(dir string, note func(string, ...any)) (*program, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("memlock limit: %w", err)
	}
	spec, err := egress.Spec()
	if err != nil {
		return nil, err
	}
	p := &program{maps: map[string]*ebpf.Map{}}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	for _, name := range sharedMaps() {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pinned map %s: %w", name, err)
		}
		if err := spec.Maps[name].Compatible(m); err != nil {
			m.Close()
			note("replace map %s: %v", name, err)
			continue
		}
		p.maps[name] = m
	}
	meta, err := openMeta(dir)
	if err != nil {
		return nil, err
	}
	defer meta.Close()
	var have [32]byte
	_ = meta.Lookup(uint32(0), &have)
	hash := egress.Hash()
	if have == hash && len(p.maps) == len(sharedMaps()) {
		if prog, err := ebpf.LoadPinnedProgram(filepath.Join(dir, progPinName), nil); err == nil {
			p.prog = prog
			ok = true
			return p, nil
		}
	}

	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: p.maps})
	if err != nil {
		return nil, explainLoad(err)
	}
	defer coll.Close()
	for _, name := range sharedMaps() {
		if p.maps[name] != nil {
			continue
		}
		m, err := coll.Maps[name].Clone()
		if err != nil {
			return nil, err
		}
		p.maps[name] = m
		if err := state.ReplacePin(m, filepath.Join(dir, name)); err != nil {
			return nil, err
		}
		note("pin map %s", name)
	}
	prog, err := coll.Programs[egress.Prog].Clone()
	if err != nil {
		return nil, err
	}
	p.prog, p.fresh = prog, true
	if err := state.ReplacePin(prog, filepath.Join(dir, progPinName)); err != nil {
		return nil, err
	}
	if err := meta.Put(uint32(0), hash); err != nil {
		return nil, fmt.Errorf("record program version: %w", err)
	}
	note("load egress program")
	ok = true
	return p, nil
}

// openMeta opens (or creates and pins) the map recording the version of
// the pinned program.
func openMeta(dir string) (*ebpf.Map, error) {
	path := filepath.Join(dir, metaPinName)
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err == nil {
		return m, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("pinned map %s: %w", metaPinName, err)
	}
	m, err = ebpf.NewMap(&ebpf.MapSpec{Name: metaPinName, Type: ebpf.Array, KeySize: 4, ValueSize: 32, MaxEntries: 1})
	if err != nil {
		return nil, explainLoad(err)
	}
	if err := state.ReplacePin(m, path); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// configure makes the local-address map hold exactly the addresses that
// write an option, with their formats: new ones first, stale ones last.
func (p *program) configure(spec Spec, note func(string, ...any)) error {
	m := p.maps[egress.MapLaddrs]
	want := map[egress.LaddrKey]egress.LaddrConf{}
	for _, la := range spec.LocalAddrs() {
		if la.TOA == 0 {
			continue
		}
		want[laddrKey(la)] = egress.LaddrConf{Format: uint32(la.TOA)}
	}
	have := map[egress.LaddrKey]egress.LaddrConf{}
	var k egress.LaddrKey
	var v egress.LaddrConf
	it := m.Iterate()
	for it.Next(&k, &v) {
		have[k] = v
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read local addresses: %w", err)
	}
	for k, v := range want {
		if cur, ok := have[k]; ok && cur == v {
			continue
		}
		if err := m.Put(k, v); err != nil {
			return fmt.Errorf("local address %s: %w", keyAddr(k), err)
		}
		note("local address %s writes TOA format %d", keyAddr(k), v.Format)
	}
	for k := range have {
		if _, ok := want[k]; ok {
			continue
		}
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("local address %s: %w", keyAddr(k), err)
		}
		note("local address %s no longer writes TOA", keyAddr(k))
	}
	return nil
}

func laddrKey(la LocalAddr) egress.LaddrKey {
	k := egress.LaddrKey{Family: 4}
	if la.Addr.Is6() {
		k.Family = 6
	}
	copy(k.Addr[:], la.Addr.AsSlice())
	return k
}

func keyAddr(k egress.LaddrKey) netip.Addr {
	if k.Family == 4 {
		return netip.AddrFrom4([4]byte(k.Addr[:4]))
	}
	return netip.AddrFrom16(k.Addr)
}

// removePins removes the program's pins (tcx links are removed with
// their hooks) and the directory when it is empty.
func removePins(dir string) error {
	var errs []error
	for _, name := range append(sharedMaps(), progPinName, metaPinName) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err == nil && len(entries) == 0 {
		if err := os.Remove(dir); err != nil {
			errs = append(errs, err)
		}
		// The shared parent (/sys/fs/bpf/lvs-node) goes when nothing
		// else of lvs-node is pinned there.
		_ = os.Remove(filepath.Dir(dir))
	}
	return errors.Join(errs...)
}

// explainLoad turns a refused load into what the kernel lacks.
func explainLoad(err error) error {
	var ve *ebpf.VerifierError
	msg := err.Error()
	switch {
	case strings.Contains(msg, "bpf_skb_ct_lookup") || strings.Contains(msg, "bpf_ct_release"):
		return fmt.Errorf("%w: conntrack lookup from eBPF (bpf_skb_ct_lookup: Linux 5.18 or later, nf_conntrack loaded, with BTF): %v", ErrKernel, err)
	case errors.As(err, &ve):
		return fmt.Errorf("%w: the verifier refused the egress program: %v", ErrKernel, err)
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%w: %v", ErrKernel, err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("load the full-NAT egress program: %w (needs CAP_BPF and CAP_NET_ADMIN, or root)", err)
	}
	return fmt.Errorf("load the full-NAT egress program: %w", err)
}
