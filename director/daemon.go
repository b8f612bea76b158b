package director

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lvs-node/lvs-node/internal/config"
)

// reconcileTimeout bounds one reconciliation (a table dump plus a batch).
const reconcileTimeout = 5 * time.Minute

// Daemon keeps the kernel in line with a configuration file: it applies
// it, re-applies it every resync interval and reloads it on request.
type Daemon struct {
	Path   string // the configuration file
	Engine *Engine
	Log    *slog.Logger
	// Hup delivers reload requests (SIGHUP); nil when unused.
	Hup <-chan os.Signal

	reloads chan chan error
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

	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	if p := cfg.Listen.ControlPath(); p != "" {
		ln, err := listenControl(p)
		if err != nil {
			return err
		}
		closers = append(closers, func() { ln.Close(); os.Remove(p) })
		go d.serveControl(ctx, ln)
		log.Info("control socket ready", "path", p)
	}
	if a := cfg.Listen.MetricsAddr(); a != "" {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("listen on %s for metrics: %w", a, err)
		}
		// A registry per daemon: nothing is registered globally.
		h := MetricsHandler(NewMetricsRegistry(d.Engine), log.With("endpoint", "metrics"))
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln) //nolint:errcheck // returns when closed
		closers = append(closers, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
		log.Info("metrics ready", "address", ln.Addr().String())
	}

	want := cfg
	d.apply(ctx, want, "start")
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
			log.Info("stopping; the IPVS table is left in place")
			return nil
		case <-d.Hup:
			log.Info("reload requested by SIGHUP")
			if c, err := d.reload(ctx); err == nil {
				want = c
			}
			debug.FreeOSMemory()
		case reply := <-d.reloads:
			log.Info("reload requested on the control socket")
			c, err := d.reload(ctx)
			if err == nil {
				want = c
			}
			reply <- err
			debug.FreeOSMemory()
		case <-ticker.C:
			if d.Engine.Config() == nil {
				// The first apply failed before reaching the kernel: try again.
				d.apply(ctx, want, "retry")
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
		}
		if iv := want.Director.ResyncInterval.D(); iv != interval {
			interval = iv
			ticker.Reset(interval)
		}
	}
}

func (d *Daemon) apply(ctx context.Context, cfg *Config, why string) {
	rctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
	defer cancel()
	start := time.Now()
	ops, err := d.Engine.Apply(rctx, cfg)
	if err != nil {
		d.Log.Error("apply failed", "when", why, "applied", len(ops), "error", err)
		return
	}
	d.Log.Info("applied", "when", why, "services", len(cfg.VirtualServices), "changes", len(ops), "took", time.Since(start).Round(time.Millisecond))
}

// reload reads the file again. A file that does not validate changes
// nothing: every problem is logged and the old configuration stays.
func (d *Daemon) reload(ctx context.Context) (*Config, error) {
	cfg, _, err := LoadConfig(d.Path)
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
	start := time.Now()
	ops, err := d.Engine.Reload(rctx, cfg)
	if err != nil {
		d.Log.Error("reload failed", "applied", len(ops), "error", err)
		return nil, err
	}
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

func listenControl(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	// A socket left by a daemon that died is replaced; a live one is not.
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use: is another director running?", path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale control socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket mode: %w", err)
	}
	return ln, nil
}

// The control protocol: the client sends one line, "reload"; the daemon
// answers "ok" or "error" followed by the problems, one per line, and
// closes. The socket accepts no configuration.
func (d *Daemon) serveControl(ctx context.Context, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				d.Log.Error("control socket", "error", err)
			}
			return
		}
		go d.handleControl(ctx, c)
	}
}

func (d *Daemon) handleControl(ctx context.Context, c net.Conn) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 256)).ReadString('\n')
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch strings.TrimSpace(line) {
	case "reload":
		reply := make(chan error, 1)
		select {
		case d.reloads <- reply:
		case <-ctx.Done():
			fmt.Fprintln(c, "error\nthe director is stopping")
			return
		}
		if err := <-reply; err != nil {
			fmt.Fprintf(c, "error\n%v\n", err)
			return
		}
		fmt.Fprintln(c, "ok")
	default:
		fmt.Fprintf(c, "error\nunknown command %q (want reload)\n", strings.TrimSpace(line))
	}
}

// RequestReload asks the daemon listening on socket to reload its file and
// returns its verdict: nil, or the problems that kept the old
// configuration in effect.
func RequestReload(ctx context.Context, socket string) error {
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("reach the director on %s: %w", socket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, "reload\n"); err != nil {
		return fmt.Errorf("send reload: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(c, 1<<20))
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	first, rest, _ := strings.Cut(string(out), "\n")
	switch first {
	case "ok":
		return nil
	case "error":
		return fmt.Errorf("reload refused, the previous configuration stays in effect:\n%s", strings.TrimRight(rest, "\n"))
	}
	return fmt.Errorf("unexpected reply from the director: %q", string(out))
}
