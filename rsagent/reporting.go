package rsagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/control"
	"github.com/lvs-node/lvs-node/rsagent/agentserver"
	"github.com/lvs-node/lvs-node/rsagent/load"
)

// ReportingOptions are the optional parts of a Reporter.
type ReportingOptions struct {
	// ProcRoot is where /proc is read (tests point it at fixtures).
	ProcRoot string
	Log      *slog.Logger
}

// Reporter runs the load sources and the agent of a real server: it
// samples the load every load.interval and answers agent checks (and the
// JSON endpoint) from the last sample and the admin state.
type Reporter struct {
	rs      *Realserver
	log     *slog.Logger
	sampler *load.Sampler
	admin   *AdminStore
	server  *agentserver.Server
	closers []func()
}

// NewReporter builds the reporter of rs, or returns nil when rs has no
// agent. It reads the token file (which must not be readable by others)
// and the admin state; it listens on nothing yet (see Start).
func NewReporter(rs *Realserver, opts ReportingOptions) (*Reporter, error) {
	if rs.Agent == nil {
		return nil, nil
	}
	log := opts.Log
	if log == nil {
		log = discardLogger()
	}
	r := &Reporter{rs: rs, log: log}
	var token string
	if f := rs.Agent.TokenFile; f != "" {
		var err error
		if token, err = readAgentToken(f); err != nil {
			return nil, err
		}
	}
	admin, err := OpenAdminStore(rs.StateDir)
	if err != nil {
		return nil, err
	}
	r.admin = admin
	var sources []load.Named
	lc := rs.Load
	if lc == nil {
		lc = &LoadSettings{Interval: config.Duration(DefaultLoadInterval), Combine: string(load.CombineMin)}
	}
	counts := map[string]int{}
	for _, s := range lc.Sources {
		counts[s.Type]++
	}
	for i, s := range lc.Sources {
		src, closeFn, err := buildSource(s, opts.ProcRoot)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("realserver.load.sources[%d] (%s): %w", i, s.Type, err)
		}
		if closeFn != nil {
			r.closers = append(r.closers, closeFn)
		}
		name := s.Type
		if counts[s.Type] > 1 {
			name = fmt.Sprintf("%s#%d", s.Type, i)
		}
		sources = append(sources, load.Named{Name: name, Type: s.Type, Source: src, Timeout: s.Timeout.D()})
	}
	r.sampler, err = load.NewSampler(sources, load.Combine(lc.Combine), lc.Interval.D())
	if err != nil {
		r.Close()
		return nil, err
	}
	r.server, err = agentserver.New(agentserver.Options{Report: r.Report, Token: token, Log: log})
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func buildSource(s SourceConfig, procRoot string) (load.Source, func(), error) {
	switch s.Type {
	case SourceCPU:
		c, err := load.NewCPU(procRoot)
		return c, nil, err
	case SourceLoadavg:
		l, err := load.NewLoadavg(procRoot, s.MaxPerCore)
		return l, nil, err
	case SourcePSI:
		p, err := load.NewPSI(procRoot, s.Resource, s.Max)
		return p, nil, err
	case SourceConnections:
		c, err := load.NewConnections(s.Ports, int(s.Max))
		if err != nil {
			return nil, nil, err
		}
		return c, c.Close, nil
	case SourceCommand:
		if len(s.Command.Argv) > 0 {
			c, err := load.NewCommand(s.Command.Argv)
			return c, nil, err
		}
		c, err := load.NewShellCommand(s.Command.Shell)
		return c, nil, err
	case SourceFile:
		f, err := load.NewFile(s.Path)
		return f, nil, err
	case SourceHTTP:
		h, err := load.NewHTTP(s.URL)
		return h, nil, err
	}
	return nil, nil, fmt.Errorf("unknown source type %q", s.Type)
}

// readAgentToken reads the agent's token file, which must not be
// readable by others.
func readAgentToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("realserver.agent.token_file: %w", err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("realserver.agent.token_file %s is accessible by others (mode %s): chmod o-rwx it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("realserver.agent.token_file: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	tok := strings.TrimSpace(line)
	if tok == "" {
		return "", fmt.Errorf("realserver.agent.token_file %s: the first line is empty", path)
	}
	return tok, nil
}

// Report is the agent's current report.
func (r *Reporter) Report() agentserver.Report {
	snap := r.sampler.Snapshot()
	return agentserver.Report{Time: snap.Time, Capacity: snap.Capacity, Combine: snap.Combine,
		Admin: r.admin.Get(), Health: snap.Health, Sources: snap.Sources}
}

// Admin is the admin state store.
func (r *Reporter) Admin() *AdminStore { return r.admin }

// Collector returns the load and agent metrics.
func (r *Reporter) Collector() prometheus.Collector { return r.server.Collector() }

// ControlHandler answers drain, ready and maint and hands every other
// command to next. r may be nil (no agent): the admin commands are then
// refused.
func (r *Reporter) ControlHandler(next control.Handler, log *slog.Logger) control.Handler {
	var store *AdminStore
	if r != nil {
		store = r.admin
	}
	return adminHandler(store, next, log)
}

// Start binds the agent (and HTTP) listeners, takes a first load sample
// and serves until ctx is done. wait returns when everything has stopped.
func (r *Reporter) Start(ctx context.Context) (wait func(), err error) {
	a := r.rs.Agent
	ln, err := net.Listen("tcp", a.Listen)
	if err != nil {
		return nil, fmt.Errorf("realserver.agent.listen: %w", err)
	}
	var hln net.Listener
	if a.HTTP != "" {
		if hln, err = net.Listen("tcp", a.HTTP); err != nil {
			ln.Close()
			return nil, fmt.Errorf("realserver.agent.http: %w", err)
		}
	}
	r.sampler.Sample(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.sampler.Run(ctx) })
	wg.Go(func() {
		if err := r.server.Serve(ctx, ln); err != nil {
			r.log.Error("agent listener stopped", "err", err)
		}
	})
	if hln != nil {
		srv := &http.Server{Handler: r.server.Handler(), ReadHeaderTimeout: 5 * time.Second,
			ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelWarn)}
		wg.Go(func() {
			if err := srv.Serve(hln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Error("agent http endpoint stopped", "err", err)
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
	}
	r.log.Info("agent ready", "listen", ln.Addr().String(), "http", a.HTTP, "sources", len(r.rs.loadSources()),
		"admin", r.admin.Get().String(), "token", a.TokenFile != "")
	return func() { wg.Wait(); r.Close() }, nil
}

func (rs *Realserver) loadSources() []SourceConfig {
	if rs.Load == nil {
		return nil
	}
	return rs.Load.Sources
}

// Close releases the sources' resources.
func (r *Reporter) Close() {
	for _, c := range r.closers {
		c()
	}
	r.closers = nil
}

// startReporting starts the reporter of rs, when an agent is configured,
// with its metrics in m. stop ends it and waits; it must be called.
func startReporting(ctx context.Context, rs *Realserver, log *slog.Logger, m *Metrics) (*Reporter, func(), error) {
	rep, err := NewReporter(rs, ReportingOptions{Log: log})
	if err != nil || rep == nil {
		return nil, func() {}, err
	}
	if err := m.reg.Register(rep.Collector()); err != nil {
		rep.Close()
		return nil, nil, fmt.Errorf("agent metrics: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	wait, err := rep.Start(rctx)
	if err != nil {
		cancel()
		m.reg.Unregister(rep.Collector())
		rep.Close()
		return nil, nil, err
	}
	return rep, func() { cancel(); wait() }, nil
}

// reportingChanged refuses a reload that changes agent: or load: (the
// listeners and sources are set up once; restart the daemon).
func reportingChanged(old, cur *Realserver, doc *config.Doc) *config.Error {
	if reflect.DeepEqual(old.Reporting, cur.Reporting) {
		return nil
	}
	path := "realserver.agent"
	if reflect.DeepEqual(old.Agent, cur.Agent) {
		path = "realserver.load"
	}
	return doc.Errorf(path, "agent and load cannot change on reload; restart the daemon")
}

// Stats returns the agent's counters.
func (r *Reporter) Stats() agentserver.Stats { return r.server.Stats() }
