package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lvs-node/lvs-node/internal/control"
	"github.com/lvs-node/lvs-node/internal/promserve"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/sdnotify"
)

// reconcileTimeout bounds one reconciliation (a table dump plus a batch).
const reconcileTimeout = 5 * time.Minute

// Daemon keeps the kernel in line with a configuration file: it applies
// it, re-applies it every resync interval and reloads it on request.
type Daemon struct {
	Path string // the configuration file
	// Loader read the configuration Run is given, and reads it again on
	// reloads (nil: a new one for Path).
	Loader *Loader
	Engine *Engine
	Log    *slog.Logger
	// Hup delivers reload requests (SIGHUP); nil when unused.
	Hup <-chan os.Signal
	// Inputs tune the health checks and load feedback (monitor.go).
	Inputs MonitorOptions
	// HA follows keepalived's role and announces VIPs (ha.go); Run makes
	// one when nil.
	HA *HA

	reloads chan chan error
	mon     *Monitor
}

// Run applies cfg (already loaded from d.Path), then serves until ctx is
// done. It returns an error only when an endpoint cannot be opened.
// Leaving Run changes nothing in the kernel: the IPVS table, the firewall
// marks and the sysctls stay, so a restarted daemon drops no connection.
func (d *Daemon) Run(ctx context.Context, cfg *Config) error {
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d.Log = log
	d.reloads = make(chan chan error)
	if err := d.openMonitor(ctx, cfg); err != nil {
		return err
	}
	defer d.mon.Wait()

	if d.HA == nil {
		d.HA = NewHA(d.Engine, cfg.Director.StateDir, log.With("part", "ha"))
	}
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	if p := cfg.Listen.ControlPath(); p != "" {
		ln, err := control.Listen(p)
		if err != nil {
			return err
		}
		closers = append(closers, func() { ln.Close() }) // removes the socket file
		go control.Serve(ctx, ln, log, d.handleControl, append(controlCommands(), ControlCommands()...)...)
		log.Info("control socket ready", "path", p)
	}
	if a := cfg.Listen.MetricsAddr(); a != "" {
		// A registry per daemon: nothing is registered globally.
		srv, err := promserve.Start(a, MetricsHandler(NewMetricsRegistry(d.Engine, d.mon.MetricGroups()), d.Engine, log.With("endpoint", "metrics")), log)
		if err != nil {
			return err
		}
		closers = append(closers, srv.Close)
		log.Info("metrics ready", "address", srv.Addr())
	}

	haCtx, haStop := context.WithCancel(ctx)
	haDone := make(chan struct{})
	go func() { defer close(haDone); d.HA.Run(haCtx, cfg) }()
	closers = append(closers, func() { haStop(); <-haDone }) // withdraws the VIPs

	want := cfg
	// ready: the service manager was told (sd_notify READY=1) that the
	// configuration is applied and the kernel in sync; until then a failed
	// start is retried at every tick and the unit stays "activating".
	ready := false
	markReady := func(ok bool) {
		if ok && !ready {
			ready = true
			sdnotify.Ready(log, fmt.Sprintf("%d virtual services in sync", len(want.VirtualServices)))
		}
	}
	markReady(d.apply(ctx, want, "start"))
	d.startMonitor(ctx, want)
	// Parsing a large file leaves garbage several times the size of the
	// table it describes: hand it back to the system now rather than at
	// the next forced collection minutes later.
	debug.FreeOSMemory()
	interval := want.Director.ResyncInterval.D()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			sdnotify.Stopping(log)
			log.Info("stopping; the IPVS table is left in place")
			return nil
		case <-d.Hup:
			log.Info("reload requested by SIGHUP")
			if c, err := d.notifiedReload(ctx, ready); err == nil {
				want = c
				markReady(true)
			}
			debug.FreeOSMemory()
		case reply := <-d.reloads:
			log.Info("reload requested on the control socket")
			c, err := d.notifiedReload(ctx, ready)
			if err == nil {
				want = c
				markReady(true)
			}
			reply <- err
			debug.FreeOSMemory()
		case <-ticker.C:
			if d.Engine.Config() == nil {
				// The first apply failed before reaching the kernel: try again.
				markReady(d.apply(ctx, want, "retry"))
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
			n, err := d.Engine.Resync(rctx)
			cancel()
			if err != nil {
				log.Error("resync failed", "error", err)
			} else {
				log.Debug("resync done", "repairs", n)
			}
			markReady(err == nil)
		}
		if iv := want.Director.ResyncInterval.D(); iv != interval {
			interval = iv
			ticker.Reset(interval)
		}
	}
}

// apply applies cfg and reports whether the kernel is now in sync.
func (d *Daemon) apply(ctx context.Context, cfg *Config, why string) bool {
	rctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
	defer cancel()
	start := time.Now()
	ops, err := d.Engine.Apply(rctx, cfg)
	if err != nil {
		d.Log.Error("apply failed", "when", why, "applied", len(ops), "error", err)
		return false
	}
	d.Log.Info("applied", "when", why, "services", len(cfg.VirtualServices), "changes", len(ops), "took", time.Since(start).Round(time.Millisecond))
	return true
}

// notifiedReload is reload framed by RELOADING=1 and READY=1 for the
// service manager once the daemon has been ready: whatever the result, a
// configuration is in effect when it returns.
func (d *Daemon) notifiedReload(ctx context.Context, ready bool) (*Config, error) {
	if !ready {
		return d.reload(ctx)
	}
	sdnotify.Reloading(d.Log)
	c, err := d.reload(ctx)
	status := "reloaded"
	if err != nil {
		status = "reload refused; the previous configuration stays in effect"
	}
	sdnotify.Ready(d.Log, status)
	return c, err
}

// reload reads the file again. A file that does not validate changes
// nothing: every problem is logged and the old configuration stays.
func (d *Daemon) reload(ctx context.Context) (*Config, error) {
	if d.Loader == nil {
		d.Loader = NewLoader(d.Path)
	}
	cfg, doc, err := d.Loader.Load()
	if err == nil {
		err = d.checkHost(cfg, doc)
	}
	if err != nil {
		d.Engine.CountReloadError()
		if es := config.AsErrors(err); len(es) > 0 {
			for _, e := range es {
				d.Log.Error("reload refused: bad configuration", "error", e.Error())
			}
		} else {
			d.Log.Error("reload refused", "error", err)
		}
		d.Log.Warn("the previous configuration stays in effect")
		return nil, err
	}
	old := d.Engine.Config()
	if old != nil && (old.Listen.MetricsAddr() != cfg.Listen.MetricsAddr() || old.Listen.ControlPath() != cfg.Listen.ControlPath()) {
		d.Log.Warn("listen changes take effect at the next restart")
	}
	rctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
	defer cancel()
	if err := d.mon.Prepare(rctx, cfg); err != nil {
		d.Engine.CountReloadError()
		d.Log.Error("reload refused", "error", err)
		return nil, err
	}
	start := time.Now()
	ops, err := d.Engine.Reload(rctx, cfg)
	if err != nil {
		d.mon.Revert(d.Engine.Config())
		d.Log.Error("reload failed", "applied", len(ops), "error", err)
		return nil, err
	}
	d.mon.Commit(rctx, cfg)
	d.Log.Info("reloaded", "services", len(cfg.VirtualServices), "changes", len(ops), "took", time.Since(start).Round(time.Millisecond))
	for i, op := range ops {
		if i == 50 {
			d.Log.Info("more changes not shown", "count", len(ops)-i)
			break
		}
		d.Log.Info("change", "op", FormatOp(op))
	}
	return cfg, nil
}

// handleControl answers the control socket: "reload" makes the daemon
// re-read its own file and returns nil or the problems that kept the old
// configuration in effect. The socket accepts no configuration.
func (d *Daemon) handleControl(ctx context.Context, cmd string) (string, error) {
	if strings.HasPrefix(cmd, "ha ") {
		return d.HA.Control(ctx, cmd)
	}
	if cmd != cmdReload {
		return d.control(ctx, cmd)
	}
	reply := make(chan error, 1)
	select {
	case d.reloads <- reply:
	case <-ctx.Done():
		return "", errors.New("the director is stopping")
	}
	select {
	case err := <-reply:
		return "", err
	case <-ctx.Done():
		return "", errors.New("the director is stopping")
	}
}

// RequestReload asks the daemon listening on socket to reload its file and
// returns its verdict: nil, or the problems that kept the old
// configuration in effect.
func RequestReload(ctx context.Context, socket string) error {
	_, err := control.Call(ctx, socket, cmdReload)
	var r *control.Refusal
	if errors.As(err, &r) {
		return fmt.Errorf("reload refused, the previous configuration stays in effect:\n%s", r.Problems)
	}
	if err != nil {
		return fmt.Errorf("reload the director: %w", err)
	}
	return nil
}
