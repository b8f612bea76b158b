package rsagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lvs-node/lvs-node/internal/control"
	"github.com/lvs-node/lvs-node/internal/promserve"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/sdnotify"
)

// RunOptions are the daemon's optional parts.
type RunOptions struct {
	// Metrics receives the daemon's counters; nil keeps them private.
	Metrics *Metrics
	// ConfigPath is the file a reload re-reads; empty refuses reloads.
	ConfigPath string
	// Control is the path of the control socket; empty serves none.
	Control string
	// MetricsAddr is where the metrics, /healthz and /readyz are served;
	// empty serves none.
	MetricsAddr string
	// TOA applies realserver.toa; nil leaves eBPF TOA alone.
	TOA TOAHost
}

// Run applies the configuration and keeps it applied until ctx is done:
// netlink changes trigger a pass at once, and every watch_interval the
// sysctls (which send no notification) are checked too. Each repair is
// logged once, as the ip(8)/sysctl(8) line it ran. When ctx is done the
// host is left as it is, serving, and its record stays in state_dir: a
// restarted daemon adopts what it finds and changes nothing. Only with
// restore_on_exit: true is everything restored (see Down).
//
// With opts.Control set, Run serves the control socket (mode 0600, removed
// on exit): status reports what is applied, reload re-reads
// opts.ConfigPath. A reload whose file does not validate, or that the host
// refuses (see Up), changes nothing.
//
// All kernel changes happen on the calling goroutine, so a caller that
// locked its thread into a network namespace keeps them there.
func (a *Agent) Run(ctx context.Context, opts RunOptions) error {
	m := opts.Metrics
	if m == nil {
		m = NewMetrics()
	}
	done := make(chan struct{})
	defer close(done)
	rep, stopReporting, err := startReporting(ctx, a.cfg.Realserver, a.log, m)
	if err != nil {
		return err
	}
	defer stopReporting()
	reqs := make(chan ctlReq)
	board := &statusBoard{}
	if opts.Control != "" {
		ln, err := control.Listen(opts.Control)
		if err != nil {
			return err
		}
		defer ln.Close() // removes the socket file
		go control.Serve(ctx, ln, a.log, rep.ControlHandler(handler(reqs, done, board), a.log), append([]string{cmdStatus, cmdReload}, AdminCommands()...)...)
	}

	var notReady atomic.Pointer[string]
	msg := "the configuration is not applied yet"
	notReady.Store(&msg)
	if opts.MetricsAddr != "" {
		srv, err := promserve.Start(opts.MetricsAddr, m.Handler(func() error {
			if p := notReady.Load(); p != nil {
				return errors.New(*p)
			}
			return nil
		}), a.log)
		if err != nil {
			return err
		}
		defer srv.Close()
		a.log.Info("metrics ready", "address", srv.Addr())
	}

	board.begin("applying the configuration")
	changes, err := a.Up()
	board.end()
	for _, c := range changes {
		a.log.Info("applied", "change", c)
	}
	if err != nil {
		return err
	}
	if st, err := a.status(); err == nil {
		st.Config = opts.ConfigPath
		board.publish(st)
	}
	notReady.Store(nil)
	rs := a.cfg.Realserver
	if opts.Control != "" {
		a.log.Info("control socket ready", "path", opts.Control)
	}
	toaK := &toaKeeper{h: opts.TOA}
	toaK.pass(a, a.log, m)
	a.log.Info("real server ready", "changes", len(changes), "vips", len(rs.VIPs), "watch_interval", rs.WatchInterval.D())
	sdnotify.Ready(a.log, fmt.Sprintf("%d VIPs applied", len(rs.VIPs)))
	a.updateGauge(m)

	events, err := a.k.Watch(done)
	if err != nil {
		return fmt.Errorf("watch network changes: %w", err)
	}
	tick := time.NewTicker(rs.WatchInterval.D())
	defer tick.Stop()
	var repairs, reloads uint64
	lastErr := ""
	// fresh computes the status and publishes it for readers that find
	// the loop busy.
	fresh := func() (*Status, error) {
		st, err := a.status()
		if err == nil {
			st.Config, st.Repairs, st.Reloads, st.LastError = opts.ConfigPath, repairs, reloads, lastErr
			st.Agent, st.TOA = rep.agentStatus(), toaK.status(a)
			board.publish(st)
		}
		return st, err
	}
	for {
		select {
		case <-ctx.Done():
			sdnotify.Stopping(a.log)
			if !a.cfg.Realserver.RestoreOnExitValue() {
				a.log.Info("stopping; leaving the configuration in place")
				return nil
			}
			changes, err := a.Down()
			for _, c := range changes {
				a.log.Info("restored", "change", c)
			}
			if err != nil {
				return fmt.Errorf("restore on exit: %w", err)
			}
			a.log.Info("stopped; host restored", "changes", len(changes))
			return nil
		case req := <-reqs:
			switch req.cmd {
			case cmdStatus:
				st, err := fresh()
				req.reply <- statusReply(st, err)
				continue
			case cmdReload:
				a.log.Info("reload requested on the control socket")
				sdnotify.Reloading(a.log)
				board.begin("reloading")
				changes, err := a.reload(opts.ConfigPath)
				board.end()
				if err != nil {
					sdnotify.Ready(a.log, "reload refused; the previous configuration stays in effect")
				} else {
					sdnotify.Ready(a.log, fmt.Sprintf("reloaded; %d VIPs applied", len(a.cfg.Realserver.VIPs)))
				}
				for _, c := range changes {
					a.log.Info("applied", "change", c)
				}
				if err != nil {
					m.reloads.WithLabelValues("refused").Inc()
					a.log.Error("reload refused", "err", strings.ReplaceAll(err.Error(), "\n", "; "))
					req.reply <- ctlReply{err: err}
					continue
				}
				reloads++
				m.reloads.WithLabelValues("ok").Inc()
				a.log.Info("reloaded", "changes", len(changes), "vips", len(a.cfg.Realserver.VIPs))
				tick.Reset(a.cfg.Realserver.WatchInterval.D())
				a.updateGauge(m)
				req.reply <- ctlReply{body: lines(changes)}
				lastErr = ""
				continue
			}
		case <-events:
			// Let a burst of notifications settle (our own changes cause
			// some too).
			settle := time.NewTimer(20 * time.Millisecond)
			select {
			case <-ctx.Done():
				settle.Stop()
				continue
			case <-settle.C:
			}
			drain(events)
		case <-tick.C:
		}
		board.begin("checking and repairing the host")
		changes, err := a.Up()
		board.end()
		for _, c := range changes {
			a.log.Warn("repaired", "change", c)
			m.repairs.Inc()
			repairs++
		}
		if err != nil {
			m.fails.Inc()
			msg := err.Error()
			notReady.Store(&msg)
			if msg != lastErr {
				a.log.Error("cannot keep the configuration applied", "err", strings.ReplaceAll(msg, "\n", "; "))
				lastErr = msg
			}
		} else {
			notReady.Store(nil)
			if lastErr != "" {
				a.log.Info("configuration applied again")
				lastErr = ""
			}
		}
		toaK.pass(a, a.log, m)
		a.updateGauge(m)
		// A pass that repaired or failed publishes what it left, so that
		// a status answered while the next pass runs is not older.
		if len(changes) > 0 || err != nil {
			_, _ = fresh()
		}
	}
}

func statusReply(st *Status, err error) ctlReply {
	if err != nil {
		return ctlReply{err: err}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return ctlReply{err: fmt.Errorf("encode status: %w", err)}
	}
	return ctlReply{body: string(b) + "\n"}
}

func lines(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return strings.Join(ss, "\n") + "\n"
}

// reload re-reads path and applies it. The new configuration comes into
// force only once the host took all of it. A file that does not validate,
// or that changes what only a restart can change (state_dir, listen),
// changes nothing. A change the host refuses, before any change (see Up)
// or half-way, leaves the previous configuration in force: what the
// refused one changed is undone at once (and any later pass converges to
// the previous one too). The error says what was refused and why, and
// what was undone.
func (a *Agent) reload(path string) ([]string, error) {
	if path == "" {
		return nil, fmt.Errorf("no configuration file to re-read")
	}
	cfg, doc, err := LoadConfig(path)
	if err != nil {
		return nil, err
	}
	old, oldDoc := a.cfg, a.doc
	var errs config.Errors
	if cfg.Realserver.StateDir != old.Realserver.StateDir {
		errs = append(errs, doc.Errorf("realserver.state_dir", "state_dir cannot change on reload (running with %s); restart the daemon", old.Realserver.StateDir))
	}
	if cfg.Listen != old.Listen {
		errs = append(errs, doc.Errorf("listen", "listen cannot change on reload; restart the daemon"))
	}
	if e := reportingChanged(old.Realserver, cfg.Realserver, doc); e != nil {
		errs = append(errs, e)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	changes, err := a.up(cfg, doc)
	if err == nil {
		a.cfg, a.doc = cfg, doc
		return changes, nil
	}
	if len(changes) == 0 && config.AsErrors(err) != nil {
		return nil, err // refused before any change
	}
	back, berr := a.up(old, oldDoc)
	what := "the host refused the new configuration"
	if len(changes) > 0 {
		what += fmt.Sprintf(" after %d change(s) (%s)", len(changes), strings.Join(changes, "; "))
	}
	err = fmt.Errorf("%s: %w", what, err)
	switch {
	case berr != nil:
		return nil, fmt.Errorf("%w\nputting the previous configuration back failed too (%d change(s) made): %w", err, len(back), berr)
	case len(back) > 0:
		return nil, fmt.Errorf("%w\nthe previous configuration stays in force: %d change(s) undone (%s)", err, len(back), strings.Join(back, "; "))
	}
	return nil, fmt.Errorf("%w\nthe previous configuration stays in force", err)
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func (a *Agent) updateGauge(m *Metrics) {
	n, err := a.VIPsBound()
	if err == nil {
		m.vips.Set(float64(n))
	}
}

// discardLogger is used when no logger is given.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
