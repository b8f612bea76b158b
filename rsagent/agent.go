package rsagent

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/hostnet"
	"github.com/lvs-node/lvs-node/internal/state"
	"github.com/lvs-node/lvs-node/internal/sysctls"
)

// State file names inside state_dir.
const (
	RecordFile  = "realserver.json"
	SysctlsFile = "realserver-sysctls.json"
)

// Sysctls is what rsagent needs from internal/sysctls.Recorder.
type Sysctls interface {
	Get(key string) (string, error)
	// Apply sets key, recording its original before the first change, and
	// reports whether it changed anything.
	Apply(key, value string) (bool, error)
	// Restore puts every recorded original back.
	Restore() error
	// RestoreKeys puts back the recorded originals of keys only.
	RestoreKeys(keys ...string) error
	// Originals returns the recorded originals.
	Originals() map[string]string
}

// Agent applies and reverts one real-server configuration.
type Agent struct {
	cfg     *Config
	doc     *config.Doc
	k       Kernel
	sys     Sysctls
	log     *slog.Logger
	recPath string

	mu  sync.Mutex
	led hostnet.Ledger // what lvs-node added, recorded before each change
}

// Deps are the seams an Agent changes the host through.
type Deps struct {
	Kernel  Kernel
	Sysctls Sysctls
	Log     *slog.Logger // nil discards
}

// New returns an Agent for cfg (validated by LoadConfig) that changes the
// host through deps, loading the record of an earlier run from the state
// directory.
func New(cfg *Config, doc *config.Doc, deps Deps) (*Agent, error) {
	log := deps.Log
	if log == nil {
		log = discardLogger()
	}
	a := &Agent{cfg: cfg, doc: doc, k: deps.Kernel, sys: deps.Sysctls, log: log,
		recPath: filepath.Join(cfg.Realserver.StateDir, RecordFile)}
	if _, err := state.Load(a.recPath, &a.led.Rec); err != nil {
		return nil, fmt.Errorf("load real-server record: %w", err)
	}
	a.led.Save = a.save
	return a, nil
}

// OpenSysctls opens the sysctl recorder for cfg's state directory.
func OpenSysctls(cfg *Config, opts ...sysctls.Option) (*sysctls.Recorder, error) {
	return sysctls.Open(filepath.Join(cfg.Realserver.StateDir, SysctlsFile), opts...)
}

// save writes the record of what lvs-node added (removing the file when
// nothing is left).
func (a *Agent) save(r *hostnet.Record) error {
	if r.Empty() {
		return state.Remove(a.recPath)
	}
	return state.Save(a.recPath, r)
}

// Up brings the host to the configured state and returns the changes made,
// as ip(8)/sysctl(8) lines; none when it already was. Problems that need
// the live host are found before any change and returned as config.Errors.
func (a *Agent) Up() ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.up(a.cfg, a.doc)
}

// up brings the host to the state cfg asks for; the caller holds a.mu.
func (a *Agent) up(cfg *Config, doc *config.Doc) ([]string, error) {
	d := want(cfg)
	snap, err := a.k.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("read network state: %w", err)
	}
	if snap, err = a.preflight(cfg, doc, d, snap); err != nil {
		return nil, err
	}
	var changes []string
	note := func(s fmt.Stringer) { changes = append(changes, s.String()) }

	// Objects added by an earlier run that the configuration no longer
	// asks for.
	if err := a.dropStale(d, snap, note); err != nil {
		return changes, err
	}
	if err := a.restoreSysctls(slices.Concat(d.sysAll, d.sysDev), note); err != nil {
		return changes, err
	}
	for _, s := range d.sysAll {
		if err := a.setSysctl(s, note); err != nil {
			return changes, err
		}
	}
	for _, l := range d.links {
		if _, ok := snap.Link(l.Name); ok {
			continue
		}
		if err := a.add(l, func(r *hostnet.Record) { r.Links = hostnet.AppendNew(r.Links, l) }, note); err != nil {
			return changes, err
		}
		snap.Links = append(snap.Links, LinkInfo{Name: l.Name, Kind: l.Kind, Up: true})
	}
	for _, u := range d.ups {
		if l, ok := snap.Link(u.Name); ok && l.Up {
			continue
		}
		if err := a.add(u, func(r *hostnet.Record) { r.Ups = hostnet.AppendNew(r.Ups, u) }, note); err != nil {
			return changes, err
		}
	}
	for _, f := range d.fous {
		if hasFou(snap, f) {
			continue
		}
		if err := a.add(f, func(r *hostnet.Record) { r.Fous = hostnet.AppendNew(r.Fous, f) }, note); err != nil {
			return changes, err
		}
	}
	for _, s := range d.sysDev {
		if err := a.setSysctl(s, note); err != nil {
			return changes, err
		}
	}
	for _, x := range d.addrs {
		added, err := a.led.AddAddr(a.k, x, snap.HasAddr(x))
		if err != nil {
			return changes, err
		}
		if added {
			note(x)
		}
	}
	for _, r := range d.routes {
		cur, ok := snap.RouteTo(r.Dst, r.Metric)
		if ok && cur.Gateway == r.Gateway {
			continue
		}
		if err := a.add(r, func(rec *hostnet.Record) {
			if ok && !slices.ContainsFunc(rec.Replaced, func(o Route) bool { return o.Key() == cur.Key() }) &&
				!slices.ContainsFunc(rec.Routes, func(o Route) bool { return o.Key() == r.Key() }) {
				rec.Replaced = append(rec.Replaced, cur)
			}
			rec.Routes = hostnet.AppendNew(rec.Routes, r)
		}, note); err != nil {
			return changes, err
		}
	}
	if len(changes) > 0 {
		for _, n := range d.notes {
			a.log.Info("tunnel MTU", "note", n)
		}
	}
	return changes, nil
}

// add records obj, saves the record, then adds obj.
func (a *Agent) add(obj Object, rec func(*hostnet.Record), note func(fmt.Stringer)) error {
	if err := a.led.Add(a.k, obj, rec); err != nil {
		return err
	}
	note(obj)
	return nil
}

func (a *Agent) setSysctl(s kv, note func(fmt.Stringer)) error {
	changed, err := a.sys.Apply(s.key, s.value)
	if err != nil {
		return err
	}
	if changed {
		note(s)
	}
	return nil
}

// VIPsBound counts the configured VIP addresses present on their devices.
func (a *Agent) VIPsBound() (int, error) {
	snap, err := a.k.Snapshot()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, x := range want(a.cfg).addrs {
		if snap.HasAddr(x) {
			n++
		}
	}
	return n, nil
}
