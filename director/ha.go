package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lvs-node/lvs-node/director/announce"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/state"
)

// Timing of the HA controller.
const (
	haPoll        = 200 * time.Millisecond // how often the inputs are looked at
	haSyncEvery   = 10 * time.Second       // sync daemons re-read (someone may stop them)
	haRetry       = time.Second            // a failed announcement or sync change is retried
	haCallTimeout = 15 * time.Second       // bounds one round of kernel or BIRD calls
	haStateFile   = "director-ha.json"
)

// SyncKernel runs the kernel's connection-sync daemons (an *ipvs.Client).
type SyncKernel interface {
	StartSync(ctx context.Context, d ipvs.SyncDaemon) error
	StopSync(ctx context.Context, s ipvs.SyncState) error
	SyncDaemons(ctx context.Context) ([]ipvs.SyncDaemon, error)
}

// Announcer makes the routers see exactly the given VIPs from this
// director (an *announce.BIRD).
type Announcer interface {
	Announce(ctx context.Context, vips []netip.Addr) error
	Status(ctx context.Context) (string, error)
}

// SyncStates are the sync daemons a director of role r runs: a master
// (or a director without VRRP, active-active) sends its connections and
// receives its peers'; a backup or a faulty director only receives.
func SyncStates(r Role) []ipvs.SyncState {
	if r == Backup || r == Fault {
		return []ipvs.SyncState{ipvs.SyncBackup}
	}
	return []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup}
}

// haState is what the HA controller keeps across restarts: keepalived
// tells a role once, when it changes, and an operator's drain must
// outlive an upgrade.
type haState struct {
	Role         string    `json:"role"`
	RoleSince    time.Time `json:"role_since"`
	Drained      bool      `json:"drained"`
	DrainedSince time.Time `json:"drained_since,omitzero"`
	// SyncStarted are the sync daemons lvs-node started: the ones it
	// stops when sync_daemon leaves the configuration.
	SyncStarted []ipvs.SyncState `json:"sync_started,omitempty"`
}

// HA follows the director's HA role, set by keepalived's notify hooks
// over the control socket, with the kernel's sync daemons, and announces
// the VIPs the director may carry through BIRD. It never changes the IPVS
// table: the engine programs the same table whatever the role.
type HA struct {
	engine   *Engine
	sync     SyncKernel // nil: no sync daemon here
	log      *slog.Logger
	stateDir string
	// NewAnnouncer builds the announcer for announce settings; BIRD by
	// default.
	NewAnnouncer func(*AnnounceConfig) Announcer

	work sync.Mutex // one round at a time; guards everything below
	st   haState
	cfg  *Config // the configuration the last round saw

	syncWant  []ipvs.SyncDaemon
	syncHave  []ipvs.SyncDaemon
	syncErr   error
	syncAt    time.Time // last read of the kernel's daemons
	syncDirty bool      // role or settings changed since

	annCfg   AnnounceConfig
	ann      Announcer
	annKey   annKey       // inputs of the last decision
	annWant  []VIPState   // the last decision
	annDone  []netip.Addr // what BIRD last accepted (nil: nothing yet)
	annOK    bool         // annDone is the decision
	annErr   error
	annAt    time.Time // last attempt
	stopping bool
}

// annKey is what an announcement decision depends on; the same key gives
// the same decision.
type annKey struct {
	cfg     *Config
	in      *Inputs
	ready   bool
	role    Role
	drained bool
	minUp   int
}

// NewHA returns the HA controller of an engine. The sync daemons are
// driven through the engine's kernel when it can (an *ipvs.Client).
func NewHA(e *Engine, stateDir string, log *slog.Logger) *HA {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &HA{engine: e, log: log, stateDir: stateDir, NewAnnouncer: birdAnnouncer}
	if sk, ok := e.deps.Kernel.(SyncKernel); ok {
		h.sync = sk
	}
	return h
}

// SetSyncKernel replaces the sync-daemon seam (tests).
func (h *HA) SetSyncKernel(k SyncKernel) { h.sync = k }

// birdAnnouncer announces through the BIRD of the announce settings.
func birdAnnouncer(a *AnnounceConfig) Announcer {
	return &announce.BIRD{IncludeFile: a.BIRD.IncludeFile, Birdc: a.BIRD.Birdc, Socket: a.BIRD.Socket, Timeout: a.BIRD.Timeout.D()}
}

func (h *HA) statePath() string { return filepath.Join(h.stateDir, haStateFile) }

// load reads the saved role and drain and gives the role to the engine.
func (h *HA) load() error {
	var st haState
	if _, err := state.Load(h.statePath(), &st); err != nil {
		return err
	}
	h.st = st
	h.engine.SetRole(parseRole(st.Role))
	return nil
}

func parseRole(s string) Role {
	for _, r := range []Role{Master, Backup, Fault} {
		if s == r.String() {
			return r
		}
	}
	return Standalone
}

// Run follows the role and the engine's state until ctx ends, starting
// from cfg (the configuration the daemon was started with). On the way
// out it withdraws every VIP it announced, bounded by the announcer's
// timeout; the sync daemons keep running, so a restart loses no
// connection entry.
func (h *HA) Run(ctx context.Context, cfg *Config) {
	h.work.Lock()
	if err := h.load(); err != nil {
		h.log.Error("HA state unreadable: starting as standalone, not drained", "error", err)
	}
	h.cfg = cfg
	h.syncDirty = true
	h.work.Unlock()
	t := time.NewTicker(haPoll)
	defer t.Stop()
	for {
		h.round(ctx)
		select {
		case <-ctx.Done():
			h.stop()
			return
		case <-t.C:
		}
	}
}

// stop withdraws every announced VIP.
func (h *HA) stop() {
	h.work.Lock()
	defer h.work.Unlock()
	h.stopping = true
	if h.ann == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), haCallTimeout)
	defer cancel()
	if err := h.ann.Announce(ctx, nil); err != nil {
		h.log.Error("stopping: could not withdraw the VIPs from BIRD", "error", err)
		return
	}
	h.log.Info("stopping: VIPs withdrawn from BIRD")
}

// round brings the sync daemons and the announcement in line with the
// role and the engine's state.
func (h *HA) round(ctx context.Context) {
	h.work.Lock()
	defer h.work.Unlock()
	if ctx.Err() != nil {
		return
	}
	if c := h.engine.Config(); c != nil && c != h.cfg {
		h.cfg, h.syncDirty = c, true
	}
	if h.cfg == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, haCallTimeout)
	defer cancel()
	h.syncRound(rctx)
	h.announceRound(rctx)
}

// syncRound starts and stops the kernel's sync daemons for the role.
func (h *HA) syncRound(ctx context.Context) {
	sd := h.cfg.HA.SyncDaemon
	if sd == nil && len(h.st.SyncStarted) == 0 {
		h.syncWant, h.syncHave, h.syncErr = nil, nil, nil
		return
	}
	now := time.Now()
	if !h.syncDirty && now.Sub(h.syncAt) < haSyncEvery && (h.syncErr == nil || now.Sub(h.syncAt) < haRetry) {
		return
	}
	h.syncAt, h.syncDirty = now, false
	if h.sync == nil {
		h.syncErr = errors.New("the kernel's sync daemon cannot be driven here (no IPVS client)")
		return
	}
	var want []ipvs.SyncDaemon
	if sd != nil {
		for _, st := range SyncStates(h.engine.Inputs().Role) {
			want = append(want, sd.Daemon(st))
		}
	}
	h.syncWant = want
	h.syncErr = h.applySync(ctx, want)
	if h.syncErr != nil {
		h.log.Error("sync daemons", "error", h.syncErr)
	}
	h.syncHave, _ = h.sync.SyncDaemons(ctx)
}

// applySync makes the running daemons those of want: a daemon that runs
// with other settings is restarted; with sync_daemon in the
// configuration lvs-node owns both states, without it only those it
// started.
func (h *HA) applySync(ctx context.Context, want []ipvs.SyncDaemon) error {
	have, err := h.sync.SyncDaemons(ctx)
	if err != nil {
		return err
	}
	owned := h.cfg.HA.SyncDaemon != nil
	var errs []error
	for _, st := range []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup} {
		wi := slices.IndexFunc(want, func(d ipvs.SyncDaemon) bool { return d.State == st })
		hi := slices.IndexFunc(have, func(d ipvs.SyncDaemon) bool { return d.State == st })
		mine := owned || slices.Contains(h.st.SyncStarted, st)
		if hi >= 0 && (wi < 0 || !have[hi].Same(want[wi])) && mine {
			if err := h.sync.StopSync(ctx, st); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, err)
				continue
			}
			h.log.Info("sync daemon stopped", "state", st.String())
			hi = -1
			if wi < 0 {
				h.st.SyncStarted = slices.DeleteFunc(h.st.SyncStarted, func(s ipvs.SyncState) bool { return s == st })
				if err := h.save(); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if wi >= 0 && hi < 0 {
			if !slices.Contains(h.st.SyncStarted, st) {
				h.st.SyncStarted = append(h.st.SyncStarted, st) // recorded before the start
				if err := h.save(); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			if err := h.sync.StartSync(ctx, want[wi]); err != nil {
				errs = append(errs, err)
				continue
			}
			h.log.Info("sync daemon started", "state", st.String(), "interface", want[wi].Interface, "sync_id", want[wi].SyncID)
		}
	}
	return errors.Join(errs...)
}

// announceRound decides which VIPs to announce and tells the announcer
// when the decision changed or the last attempt failed.
func (h *HA) announceRound(ctx context.Context) {
	a := h.cfg.HA.Announce
	if a == nil {
		if h.ann != nil { // announce left the configuration: withdraw
			if err := h.ann.Announce(ctx, nil); err != nil {
				h.annErr = err
				return
			}
			h.ann, h.annDone, h.annWant = nil, nil, nil
		}
		return
	}
	if h.ann == nil || a.BIRD != h.annCfg.BIRD {
		if h.ann != nil {
			_ = h.ann.Announce(ctx, nil) // best effort: the old BIRD stops announcing
		}
		h.ann, h.annOK, h.annKey = h.NewAnnouncer(a), false, annKey{}
	}
	h.annCfg = *a
	in := h.engine.Inputs()
	k := annKey{cfg: h.cfg, in: in, ready: h.engine.Ready() == nil, role: in.Role, drained: h.st.Drained, minUp: a.MinUpOrDefault()}
	if k != h.annKey {
		h.annKey = k
		h.annWant = h.decide(k)
	}
	want := announced(h.annWant)
	if h.annOK && slices.Equal(want, h.annDone) {
		return
	}
	if !h.annOK && h.annErr != nil && time.Since(h.annAt) < haRetry {
		return
	}
	h.annAt = time.Now()
	err := h.ann.Announce(ctx, want)
	prev := h.annErr
	h.annErr = err
	if err != nil {
		h.annOK = false
		if prev == nil || prev.Error() != err.Error() {
			h.log.Error("announce VIPs (retried every second; logged again when the error changes)", "error", err)
		}
		return
	}
	if !h.annOK || !slices.Equal(want, h.annDone) {
		h.log.Info("VIPs announced", "count", len(want), "vips", fmt.Sprint(want))
	}
	h.annDone, h.annOK = want, true
}

// decide is the announcement decision for k: every VIP is withheld while
// the director is out of sync, drained or not the master of a VRRP pair.
func (h *HA) decide(k annKey) []VIPState {
	vs := AnnounceVIPs(k.cfg, k.in, k.minUp)
	why := ""
	switch {
	case k.drained:
		why = "the director is drained (lvs-node director ha drain)"
	case k.role == Backup || k.role == Fault:
		why = "the HA role is " + k.role.String()
	case !k.ready:
		why = "the director is not in sync with its configuration"
	}
	if why != "" {
		for i := range vs {
			vs[i].Announce, vs[i].Reason = false, why
		}
	}
	return vs
}

func announced(vs []VIPState) []netip.Addr {
	out := []netip.Addr{}
	for _, v := range vs {
		if v.Announce {
			out = append(out, v.VIP)
		}
	}
	return out
}

func (h *HA) save() error {
	if err := state.Save(h.statePath(), &h.st); err != nil {
		return fmt.Errorf("save HA state: %w", err)
	}
	return nil
}

// SetRole records the role keepalived reports, saves it, gives it to the
// engine and applies what follows from it (sync daemons, announcement)
// before returning.
func (h *HA) SetRole(ctx context.Context, r Role) error {
	h.work.Lock()
	if h.st.Role != r.String() {
		h.st.Role, h.st.RoleSince = r.String(), time.Now().UTC()
	}
	err := h.save()
	h.engine.SetRole(r)
	h.syncDirty = true
	h.work.Unlock()
	h.round(ctx)
	return err
}

// SetDrained withdraws every VIP (drain) or lets them be announced again
// (ready), saved across restarts, and applies it before returning.
func (h *HA) SetDrained(ctx context.Context, drained bool) error {
	h.work.Lock()
	if h.st.Drained != drained {
		h.st.Drained = drained
		h.st.DrainedSince = time.Time{}
		if drained {
			h.st.DrainedSince = time.Now().UTC()
		}
	}
	err := h.save()
	h.work.Unlock()
	h.round(ctx)
	return err
}

// Control answers the HA commands of the control socket.
func (h *HA) Control(ctx context.Context, cmd string) (string, error) {
	var err error
	switch cmd {
	case "ha master":
		err = h.SetRole(ctx, Master)
	case "ha backup":
		err = h.SetRole(ctx, Backup)
	case "ha fault":
		err = h.SetRole(ctx, Fault)
	case "ha drain":
		err = h.SetDrained(ctx, true)
	case "ha ready":
		err = h.SetDrained(ctx, false)
	case "ha status":
	default:
		return "", fmt.Errorf("unknown HA command %q", cmd)
	}
	if err != nil {
		return "", err
	}
	return h.Status(ctx), nil
}

// ControlCommands are the control-socket commands Control answers.
func ControlCommands() []string {
	return []string{"ha master", "ha backup", "ha fault", "ha drain", "ha ready", "ha status"}
}

// Status describes the role, the sync daemons and the announcement, with
// every problem spelled out (BIRD not answering, keepalived not running).
func (h *HA) Status(ctx context.Context) string {
	h.work.Lock()
	defer h.work.Unlock()
	var b strings.Builder
	role := parseRole(h.st.Role)
	fmt.Fprintf(&b, "role: %s", role)
	if !h.st.RoleSince.IsZero() {
		fmt.Fprintf(&b, " (since %s)", h.st.RoleSince.Format(time.RFC3339))
	}
	b.WriteByte('\n')
	if role != Standalone {
		if pid := keepalivedPID(); pid > 0 {
			fmt.Fprintf(&b, "keepalived: running (pid %d)\n", pid)
		} else {
			b.WriteString("keepalived: NOT RUNNING: nothing will report a role change; the role above is the last one reported\n")
		}
	}
	if h.st.Drained {
		fmt.Fprintf(&b, "drained: yes (since %s): no VIP is announced\n", h.st.DrainedSince.Format(time.RFC3339))
	} else {
		b.WriteString("drained: no\n")
	}
	if h.cfg != nil && (h.cfg.HA.SyncDaemon != nil || len(h.syncHave) > 0) {
		b.WriteString("sync daemons:\n")
		for _, d := range h.syncWant {
			ok := slices.ContainsFunc(h.syncHave, func(x ipvs.SyncDaemon) bool { return x.Same(d) })
			fmt.Fprintf(&b, "  %s on %s, sync id %d: %s\n", d.State, d.Interface, d.SyncID, map[bool]string{true: "running", false: "NOT RUNNING"}[ok])
		}
		if h.syncErr != nil {
			fmt.Fprintf(&b, "  error: %v\n", h.syncErr)
		}
	}
	if h.ann != nil {
		fmt.Fprintf(&b, "announce: through BIRD on %s (include file %s, min_up %d)\n", h.annCfg.BIRD.Socket, h.annCfg.BIRD.IncludeFile, h.annCfg.MinUpOrDefault())
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := h.ann.Status(sctx)
		cancel()
		if err != nil {
			fmt.Fprintf(&b, "  BIRD: PROBLEM: %v\n", err)
		} else {
			fmt.Fprintf(&b, "  BIRD: %s, answering\n", v)
		}
		for _, v := range h.annWant {
			if v.Announce {
				fmt.Fprintf(&b, "  %s: announced\n", v.VIP)
			} else {
				fmt.Fprintf(&b, "  %s: withheld: %s\n", v.VIP, v.Reason)
			}
		}
		if h.annErr != nil {
			fmt.Fprintf(&b, "  last attempt failed (%s): %v\n", h.annAt.Format(time.RFC3339), h.annErr)
		}
	}
	return b.String()
}

// Announced returns the VIPs BIRD last accepted to announce, and whether
// that is the current decision.
func (h *HA) Announced() ([]netip.Addr, bool) {
	h.work.Lock()
	defer h.work.Unlock()
	return slices.Clone(h.annDone), h.annOK
}
