package toa

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/state"
	"github.com/lvs-node/lvs-node/toa/format"
	"github.com/lvs-node/lvs-node/toa/internal/rsprog"
)

// hook is one program and where it attaches.
type hook struct {
	prog   string // name in the ELF
	attach ebpf.AttachType
	short  string // in pin names and messages
}

func hooks() []hook {
	return []hook{
		// The readers of the address first, so that nothing stored
		// goes unread, and the slots' release before their writer, so
		// that no slot is kept past its socket.
		{rsprog.ProgPeer4, ebpf.AttachCgroupInet4GetPeername, "getpeername4"},
		{rsprog.ProgPeer6, ebpf.AttachCgroupInet6GetPeername, "getpeername6"},
		{rsprog.ProgSockopt, ebpf.AttachCGroupGetsockopt, "getsockopt"},
		{rsprog.ProgRelease, ebpf.AttachCgroupInetSockRelease, "release"},
		{rsprog.ProgSockOps, ebpf.AttachCGroupSockOps, "sockops"},
	}
}

// sharedMaps are pinned and kept across program replacements.
func sharedMaps() []string {
	return []string{rsprog.MapAddrs, rsprog.MapSlots, rsprog.MapStats, rsprog.MapTrusted, rsprog.MapConfig}
}

const metaMap = "toa_meta"

func progPin(dir string, h hook) string { return filepath.Join(dir, "prog_"+h.short) }
func linkPin(dir string, h hook) string { return filepath.Join(dir, "link_"+h.short) }
func mapPin(dir, name string) string    { return filepath.Join(dir, name) }

// lockWait bounds the wait for another process's change.
const lockWait = 30 * time.Second

// lock takes the exclusive lock of the pin directory, waiting at most
// lockWait for another process's change.
func lock(dir string) (func(), error) {
	release, err := state.LockDir(dir, lockWait)
	if errors.Is(err, state.ErrDirBusy) {
		return nil, fmt.Errorf("%s: %w (waited %s)", dir, ErrBusy, lockWait)
	}
	return release, err
}

// resolveCgroup returns the configured cgroup (or the unified root) and
// its id.
func resolveCgroup(cfg Config, opts Options) (string, uint64, error) {
	path := cfg.Cgroup
	if path == "" {
		u, err := UnifiedCgroup(opts)
		if err != nil {
			return "", 0, err
		}
		path = u
	}
	id, err := cgroupDir(path, opts)
	return path, id, err
}

// Preflight checks what Attach needs from the host without changing
// anything: the configuration, the kernel release, a loaded module
// (unless forced), the cgroup and the BPF file system. It returns the
// cgroup path.
func Preflight(cfg Config, opts Options) (string, error) {
	if err := cfg.Check(); err != nil {
		return "", err
	}
	if _, err := checkKernel(opts); err != nil {
		return "", err
	}
	if !opts.Force {
		mods, err := FindModules(opts)
		if err != nil {
			return "", err
		}
		if len(mods) > 0 {
			return "", fmt.Errorf("%w (%s): with eBPF TOA attached too, addresses would be rewritten twice; unload the module, or force", ErrModuleLoaded, mods[0].Name)
		}
	}
	path, _, err := resolveCgroup(cfg, opts)
	if err != nil {
		return "", err
	}
	if err := checkBPFFS(opts.pinDir()); err != nil {
		return "", err
	}
	return path, nil
}

// Attach makes eBPF TOA run as cfg says: it loads and attaches the
// programs on first use, replaces them in place when lvs-node brings new
// ones, moves them when the cgroup changes, and updates the trusted
// prefixes and formats. What is already as asked is left alone, so
// calling Attach again is cheap. It returns the changes made.
func Attach(cfg Config, opts Options) ([]string, error) {
	cgPath, err := Preflight(cfg, opts)
	if err != nil {
		return nil, err
	}
	_, cgID, err := resolveCgroup(cfg, opts)
	if err != nil {
		return nil, err
	}
	formats, _ := cfg.Formats()
	dir := opts.pinDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pin directory: %w", err)
	}
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("memlock limit: %w", err)
	}
	a := &attacher{dir: dir, cgPath: cgPath, cgID: cgID}
	defer a.close()
	if err := a.run(cfg, formats); err != nil {
		return a.changes, err
	}
	return a.changes, nil
}

type attacher struct {
	dir     string
	cgPath  string
	cgID    uint64
	changes []string
	closers []interface{ Close() error }
}

func (a *attacher) note(f string, args ...any) {
	a.changes = append(a.changes, fmt.Sprintf(f, args...))
}
func (a *attacher) keep(c interface{ Close() error }) { a.closers = append(a.closers, c) }
func (a *attacher) close() {
	for _, c := range a.closers {
		c.Close()
	}
}

func (a *attacher) run(cfg Config, formats format.Set) error {
	spec, err := rsprog.Spec()
	if err != nil {
		return err
	}
	if err := spec.Variables[rsprog.VarPageSize].Set(uint32(os.Getpagesize())); err != nil {
		return fmt.Errorf("set page size: %w", err)
	}
	slots := cfg.SlotCount()
	spec.Maps[rsprog.MapSlots].MaxEntries = uint32(slots)
	if err := spec.Variables[rsprog.VarSlotMask].Set(uint32(slots - 1)); err != nil {
		return fmt.Errorf("set slot mask: %w", err)
	}
	hash := rsprog.Hash()

	// The maps that outlive the programs: reuse the pinned ones.
	pinned := map[string]*ebpf.Map{}
	for _, name := range sharedMaps() {
		m, err := ebpf.LoadPinnedMap(mapPin(a.dir, name), nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("pinned map %s: %w", name, err)
		}
		a.keep(m)
		if err := spec.Maps[name].Compatible(m); err != nil {
			a.note("replace map %s: %v (connections open now keep the balancer's address)", name, err)
			continue
		}
		pinned[name] = m
	}
	meta, err := a.meta()
	if err != nil {
		return err
	}
	var oldHash [32]byte
	_ = meta.Lookup(uint32(0), &oldHash)

	// Do the programs need loading? When they changed, a map was
	// replaced, or a hook is missing or elsewhere.
	links := map[string]link.Link{}
	reload := oldHash != hash || len(pinned) != len(sharedMaps())
	for _, h := range hooks() {
		l, err := link.LoadPinnedLink(linkPin(a.dir, h), nil)
		if err != nil {
			reload = true
			continue
		}
		a.keep(l)
		links[h.short] = l
		if linkCgroup(l) != a.cgID {
			reload = true
		}
		if _, err := os.Stat(progPin(a.dir, h)); err != nil {
			reload = true
		}
	}

	var coll *ebpf.Collection
	if reload {
		coll, err = ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: pinned})
		if err != nil {
			return explainLoad(err)
		}
		defer coll.Close()
		for _, name := range sharedMaps() {
			if pinned[name] != nil {
				continue
			}
			if err := state.ReplacePin(coll.Maps[name], mapPin(a.dir, name)); err != nil {
				return err
			}
			pinned[name] = coll.Maps[name]
			a.note("pin map %s", name)
		}
	}

	// Configuration before programs, so that new hooks act on it.
	if err := a.configure(pinned, cfg, formats); err != nil {
		return err
	}
	if !reload {
		return nil
	}
	for _, h := range hooks() {
		prog := coll.Programs[h.prog]
		if old := links[h.short]; old != nil && linkCgroup(old) == a.cgID {
			// In place: the hook never goes missing.
			if err := old.Update(prog); err != nil {
				return fmt.Errorf("replace %s on %s: %w", h.short, a.cgPath, err)
			}
			a.note("replace %s on %s", h.short, a.cgPath)
		} else {
			nl, err := link.AttachCgroup(link.CgroupOptions{Path: a.cgPath, Attach: h.attach, Program: prog})
			if err != nil {
				return explainAttach(h, a.cgPath, err)
			}
			a.keep(nl)
			// Replacing the pin of a link elsewhere drops it; the kernel
			// would release it later, so the old hook is detached now.
			if err := state.ReplacePin(nl, linkPin(a.dir, h)); err != nil {
				return err
			}
			verb := "attach"
			if old != nil {
				verb = "move"
				if err := old.Detach(); err != nil {
					a.note("detach %s from its old cgroup: %v", h.short, err)
				}
			}
			a.note("%s %s to %s", verb, h.short, a.cgPath)
		}
		if err := state.ReplacePin(prog, progPin(a.dir, h)); err != nil {
			return err
		}
	}
	if err := meta.Put(uint32(0), hash); err != nil {
		return fmt.Errorf("record program version: %w", err)
	}
	return nil
}

// linkCgroup returns the id of the cgroup l is attached to, 0 if unknown.
func linkCgroup(l link.Link) uint64 {
	info, err := l.Info()
	if err != nil || info.Cgroup() == nil {
		return 0
	}
	return info.Cgroup().CgroupId
}

// meta opens (or creates and pins) the map that records the version of
// the attached programs.
func (a *attacher) meta() (*ebpf.Map, error) {
	p := mapPin(a.dir, metaMap)
	m, err := ebpf.LoadPinnedMap(p, nil)
	if err == nil {
		a.keep(m)
		return m, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("pinned map %s: %w", metaMap, err)
	}
	m, err = ebpf.NewMap(&ebpf.MapSpec{Name: metaMap, Type: ebpf.Array, KeySize: 4, ValueSize: 32, MaxEntries: 1})
	if err != nil {
		return nil, explainLoad(err)
	}
	a.keep(m)
	if err := state.ReplacePin(m, p); err != nil {
		return nil, err
	}
	return m, nil
}

// configure writes the formats and the trusted prefixes, changing only
// what differs: new prefixes are added before stale ones are removed.
func (a *attacher) configure(maps map[string]*ebpf.Map, cfg Config, formats format.Set) error {
	want := rsprog.Conf{Formats: uint32(formats)}
	if formats.NeedsSYN() {
		want.Flags |= rsprog.ConfSaveSYN
	}
	var cur rsprog.Conf
	cm := maps[rsprog.MapConfig]
	if err := cm.Lookup(uint32(0), &cur); err != nil {
		return fmt.Errorf("read configuration map: %w", err)
	}
	if cur != want {
		if err := cm.Put(uint32(0), want); err != nil {
			return fmt.Errorf("write configuration map: %w", err)
		}
		a.note("formats %s", formats)
	}
	tm := maps[rsprog.MapTrusted]
	have, err := trustedPrefixes(tm)
	if err != nil {
		return err
	}
	wantP := cfg.normalize()
	for _, p := range wantP {
		if slices.Contains(have, p) {
			continue
		}
		if err := tm.Put(trustKey(p), uint8(1)); err != nil {
			return fmt.Errorf("trust %s: %w", from6(p), err)
		}
		a.note("trust %s", from6(p))
	}
	for _, p := range have {
		if slices.Contains(wantP, p) {
			continue
		}
		if err := tm.Delete(trustKey(p)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("distrust %s: %w", from6(p), err)
		}
		a.note("distrust %s", from6(p))
	}
	return nil
}

func trustKey(p netip.Prefix) rsprog.TrustKey {
	return rsprog.TrustKey{Prefixlen: uint32(p.Bits()), Addr: p.Addr().As16()}
}

// trustedPrefixes lists the keys of the trusted map (as IPv6 prefixes).
func trustedPrefixes(m *ebpf.Map) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var k rsprog.TrustKey
	var v uint8
	it := m.Iterate()
	for it.Next(&k, &v) {
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(k.Addr), int(k.Prefixlen)))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read trusted prefixes: %w", err)
	}
	return out, nil
}

// explainLoad turns a refused load into what the kernel lacks.
func explainLoad(err error) error {
	var ve *ebpf.VerifierError
	switch {
	case errors.As(err, &ve) && strings.Contains(fmt.Sprintf("%+v", ve), "invalid bpf_context access"):
		return fmt.Errorf("%w: the verifier refused a context field (sock_ops header access needs %s+): %v", ErrKernel, MinKernel(), err)
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.EINVAL) && !errors.As(err, &ve):
		return fmt.Errorf("%w: %v", ErrKernel, err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("load eBPF TOA: %w (needs CAP_BPF and CAP_NET_ADMIN, or root)", err)
	}
	return fmt.Errorf("load eBPF TOA: %w", err)
}

// explainAttach turns a refused attach into what the kernel lacks.
func explainAttach(h hook, cg string, err error) error {
	if errors.Is(err, unix.EINVAL) || errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("attach %s to %s: %w: this kernel has no cgroup %s hook: %v", h.short, cg, ErrKernel, h.short, err)
	}
	return fmt.Errorf("attach %s to %s: %w", h.short, cg, err)
}

// Detach removes eBPF TOA: it detaches every hook and removes every pin.
// Detaching what is not attached changes nothing.
func Detach(opts Options) ([]string, error) {
	dir := opts.pinDir()
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var changes []string
	var errs []error
	for _, h := range hooks() {
		p := linkPin(dir, h)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		cg := ""
		if l, err := link.LoadPinnedLink(p, nil); err == nil {
			if info, err := l.Info(); err == nil && info.Cgroup() != nil {
				cg = cgroupPath(info.Cgroup().CgroupId, opts)
			}
			// Removing the pin drops the last reference, but the
			// kernel releases a link from a work queue, later: detach
			// it here, so that the hook is gone when Detach returns.
			// Should that fail, removing the pin still detaches it.
			_ = l.Detach()
			l.Close()
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, fmt.Errorf("detach %s: %w", h.short, err))
			continue
		}
		if cg != "" {
			changes = append(changes, fmt.Sprintf("detach %s from %s", h.short, cg))
		} else {
			changes = append(changes, "detach "+h.short)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("unpin %s: %w", e.Name(), err))
			continue
		}
		if !strings.HasPrefix(e.Name(), "link_") {
			changes = append(changes, "unpin "+e.Name())
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	// The lvs-node directory above, when it is ours and now empty.
	if parent := filepath.Dir(dir); filepath.Base(parent) == "lvs-node" {
		_ = os.Remove(parent)
	}
	return changes, errors.Join(errs...)
}

// Attached reports whether any pin is present.
func Attached(opts Options) bool {
	ents, err := os.ReadDir(opts.pinDir())
	return err == nil && len(ents) > 0
}
