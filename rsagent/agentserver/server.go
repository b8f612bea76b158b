package agentserver

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lvs-node/lvs-node/internal/agentcheck"
	"github.com/lvs-node/lvs-node/rsagent/load"
)

// Defaults.
const (
	DefaultReadTimeout = 2 * time.Second
	DefaultMaxConns    = 128
	maxTokenLine       = 256
)

// Report is what the agent answers from.
type Report struct {
	// Time of the last load reading.
	Time time.Time
	// Capacity is the combined capacity in percent; nil when unknown.
	Capacity *float64
	Combine  load.Combine
	// Admin is the real server's admin state (ready, drain or maint).
	Admin agentcheck.Admin
	// Health is the worst health word of the load sources, or none.
	Health  agentcheck.Health
	Sources []load.SourceState
}

// Reply is the agent-check reply for r.
func Reply(r Report) agentcheck.Reply {
	out := agentcheck.Reply{Health: agentcheck.HealthUp, Admin: r.Admin, WeightKind: agentcheck.WeightPercent, Weight: 100}
	if r.Health.Failed() {
		out.Health = r.Health
	}
	if out.Admin == agentcheck.AdminNone {
		out.Admin = agentcheck.AdminReady
	}
	if r.Capacity != nil {
		out.Weight = int(math.Round(min(max(*r.Capacity, 0), 100)))
	}
	return out
}

// Options configure a Server.
type Options struct {
	// Report gives the current report; called once per answer.
	Report func() Report
	// Token, when not empty, must be the first line a poller sends.
	Token string
	// ReadTimeout bounds reading the token line and writing the reply.
	// Default 2s.
	ReadTimeout time.Duration
	// MaxConns bounds the connections served at once; more are closed at
	// once. Default 128.
	MaxConns int
	// Log receives refusals at debug level. Nil discards.
	Log *slog.Logger
}

// Stats count what the server did.
type Stats struct {
	// Agent connections answered, refused (wrong or missing token),
	// dropped (too many at once) and failed (write errors).
	Answered, Refused, Busy, Failed uint64
	// HTTP requests answered and refused (method or token).
	HTTPAnswered, HTTPRefused uint64
}

// Server answers agent checks and HTTP requests.
type Server struct {
	opts  Options
	token [32]byte
	log   *slog.Logger
	sem   chan struct{}

	answered, refused, busy, failed atomic.Uint64
	httpOK, httpRefused             atomic.Uint64
}

// New returns a server.
func New(opts Options) (*Server, error) {
	if opts.Report == nil {
		return nil, errors.New("agentserver: no report")
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if strings.ContainsAny(opts.Token, "\r\n") || len(opts.Token) > maxTokenLine-2 {
		return nil, errors.New("agentserver: the token must be one line of at most 254 bytes")
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log, sem: make(chan struct{}, opts.MaxConns)}
	s.token = sha256.Sum256([]byte(opts.Token))
	return s, nil
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{Answered: s.answered.Load(), Refused: s.refused.Load(), Busy: s.busy.Load(), Failed: s.failed.Load(),
		HTTPAnswered: s.httpOK.Load(), HTTPRefused: s.httpRefused.Load()}
}

// tokenOK compares got with the token in constant time (both hashed, so
// the length does not show either).
func (s *Server) tokenOK(got string) bool {
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(h[:], s.token[:]) == 1
}

// Serve answers agent checks on ln until ctx is done; it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors, an aborted handshake: keep
			// listening, as net/http does, after a bounded pause.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("agent listener: accept failed; retrying", "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		select {
		case s.sem <- struct{}{}:
			go func() {
				defer func() { <-s.sem }()
				s.handle(c)
			}()
		default:
			s.busy.Add(1)
			c.Close()
		}
	}
}

func (s *Server) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(s.opts.ReadTimeout))
	if s.opts.Token != "" {
		line, err := bufio.NewReaderSize(io.LimitReader(c, maxTokenLine), maxTokenLine).ReadString('\n')
		if err != nil || !s.tokenOK(strings.TrimSpace(line)) {
			s.refused.Add(1)
			s.log.Debug("agent check refused: wrong or missing token", "peer", c.RemoteAddr().String())
			return
		}
	}
	line := Reply(s.opts.Report()).Format()
	if _, err := io.WriteString(c, line); err != nil {
		s.failed.Add(1)
		return
	}
	s.answered.Add(1)
	// Close our side first and read what the poller may still send
	// (HAProxy's agent-send without a token here), so that closing does
	// not reset the connection before the reply is read.
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 4096))
	}
}

// Details is the JSON document of the HTTP endpoint.
type Details struct {
	// Capacity is the combined capacity in percent, or null when no load
	// source gave one.
	Capacity *float64 `json:"capacity"`
	// Reply is the agent-check line the agent answers now.
	Reply   string             `json:"reply"`
	Admin   string             `json:"admin"`
	Health  string             `json:"health"`
	Combine load.Combine       `json:"combine,omitempty"`
	Time    time.Time          `json:"time"`
	Sources []load.SourceState `json:"sources"`
}

// DetailsOf builds the JSON document for r.
func DetailsOf(r Report) Details {
	rep := Reply(r)
	src := r.Sources
	if src == nil {
		src = []load.SourceState{}
	}
	return Details{Capacity: r.Capacity, Reply: rep.String(), Admin: rep.Admin.String(), Health: rep.Health.String(),
		Combine: r.Combine, Time: r.Time, Sources: src}
}

// Handler serves the report as JSON for GET and HEAD on /.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.httpRefused.Add(1)
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path != "/" {
			s.httpRefused.Add(1)
			http.NotFound(w, r)
			return
		}
		if s.opts.Token != "" {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || !s.tokenOK(strings.TrimSpace(tok)) {
				s.httpRefused.Add(1)
				w.Header().Set("WWW-Authenticate", "Bearer")
				http.Error(w, "token required", http.StatusUnauthorized)
				return
			}
		}
		s.httpOK.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(DetailsOf(s.opts.Report()))
	})
}
