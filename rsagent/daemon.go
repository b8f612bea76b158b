package rsagent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Metrics are the daemon's read-only metrics, served in the Prometheus
// text exposition format.
type Metrics struct {
	repairs atomic.Uint64
	fails   atomic.Uint64
	vips    atomic.Int64
}

// NewMetrics returns a fresh set of metrics.
func NewMetrics() *Metrics { return &Metrics{} }

// WriteTo writes the metrics in the Prometheus text format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	n, err := fmt.Fprintf(w, `# HELP lvs_node_realserver_repairs_total Changes made after the first apply to bring the host back to its configured state.
# TYPE lvs_node_realserver_repairs_total counter
lvs_node_realserver_repairs_total %d
# HELP lvs_node_realserver_reconcile_errors_total Reconcile passes that ended with an error.
# TYPE lvs_node_realserver_reconcile_errors_total counter
lvs_node_realserver_reconcile_errors_total %d
# HELP lvs_node_realserver_vips Configured VIPs currently bound on this host (dr and tun).
# TYPE lvs_node_realserver_vips gauge
lvs_node_realserver_vips %d
`, m.repairs.Load(), m.fails.Load(), m.vips.Load())
	return int64(n), err
}

// Handler serves the metrics (GET only).
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = m.WriteTo(w)
	})
}

// Run applies the configuration and keeps it applied until ctx is done:
// netlink changes trigger a pass at once, and every watch_interval the
// sysctls (which send no notification) are checked too. Each repair is
// logged once, as the ip(8)/sysctl(8) line it ran. When ctx is done and
// restore_on_exit is set, everything is restored (see Down).
//
// All kernel changes happen on the calling goroutine, so a caller that
// locked its thread into a network namespace keeps them there.
func (a *Agent) Run(ctx context.Context, m *Metrics) error {
	if m == nil {
		m = NewMetrics()
	}
	rs := a.cfg.Realserver
	changes, err := a.Up()
	for _, c := range changes {
		a.log.Info("applied", "change", c)
	}
	if err != nil {
		return err
	}
	a.log.Info("real server ready", "changes", len(changes), "vips", len(rs.VIPs), "watch_interval", rs.WatchInterval.D())
	a.updateGauge(m)

	done := make(chan struct{})
	defer close(done)
	events, err := a.k.Watch(done)
	if err != nil {
		return fmt.Errorf("watch network changes: %w", err)
	}
	tick := time.NewTicker(rs.WatchInterval.D())
	defer tick.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			if !rs.RestoreOnExitValue() {
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
		changes, err := a.Up()
		for _, c := range changes {
			a.log.Warn("repaired", "change", c)
			m.repairs.Add(1)
		}
		if err != nil {
			m.fails.Add(1)
			if msg := err.Error(); msg != lastErr {
				a.log.Error("cannot keep the configuration applied", "err", strings.ReplaceAll(msg, "\n", "; "))
				lastErr = msg
			}
		} else if lastErr != "" {
			a.log.Info("configuration applied again")
			lastErr = ""
		}
		a.updateGauge(m)
	}
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
		m.vips.Store(int64(n))
	}
}

// discardLogger is used when no logger is given.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
