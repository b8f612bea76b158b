package rsagent

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/rsagent/load"
)

// Defaults of load reporting.
const (
	DefaultLoadInterval   = 2 * time.Second
	DefaultSourceTimeout  = time.Second
	DefaultMaxPerCore     = 2.0
	DefaultPSIMax         = 40.0
	AdminStateFile        = "realserver-admin.json"
	maxSourceTimeoutRatio = 1 // a source's timeout is at most the interval
)

// Load source types.
const (
	SourceCPU         = "cpu"
	SourceLoadavg     = "loadavg"
	SourcePSI         = "psi"
	SourceConnections = "connections"
	SourceCommand     = "command"
	SourceFile        = "file"
	SourceHTTP        = "http"
)

// Reporting is the load-reporting part of the realserver section: the
// agent that answers the director's (and HAProxy's) agent checks and the
// load sources behind it.
type Reporting struct {
	Agent *AgentConfig  `yaml:"agent"`
	Load  *LoadSettings `yaml:"load"`
}

// AgentConfig is realserver.agent.
type AgentConfig struct {
	// Listen is the host:port of the agent-check listener.
	Listen string `yaml:"listen"`
	// HTTP is the host:port of the JSON endpoint; empty means none.
	HTTP string `yaml:"http"`
	// TokenFile holds the token pollers must send first (first line).
	TokenFile string `yaml:"token_file"`
}

// LoadSettings is realserver.load.
type LoadSettings struct {
	Interval config.Duration `yaml:"interval"`
	// Combine is min (default) or average.
	Combine string         `yaml:"combine"`
	Sources []SourceConfig `yaml:"sources"`
}

// SourceConfig is one entry of realserver.load.sources.
type SourceConfig struct {
	Type string `yaml:"type"`
	// loadavg
	MaxPerCore float64 `yaml:"max_per_core"`
	// psi
	Resource string `yaml:"resource"`
	// psi (avg10 percentage) and connections (count)
	Max float64 `yaml:"max"`
	// connections
	Ports []uint16 `yaml:"ports"`
	// command
	Command Command `yaml:"command"`
	// file
	Path string `yaml:"path"`
	// http
	URL string `yaml:"url"`
	// Timeout bounds one reading. Default 1s.
	Timeout config.Duration `yaml:"timeout"`
}

// Command is a command source's program: a list is run as it is (argv),
// a string through /bin/sh -c.
type Command struct {
	Argv  []string
	Shell string
}

// IsZero reports whether no command is set.
func (c Command) IsZero() bool { return len(c.Argv) == 0 && c.Shell == "" }

func (c Command) String() string {
	if c.Shell != "" {
		return c.Shell
	}
	return strings.Join(c.Argv, " ")
}

// DecodeNode reads a string or a list of strings.
func (c *Command) DecodeNode(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil
		}
		c.Shell = n.Value
		return nil
	case yaml.SequenceNode:
		for _, e := range n.Content {
			if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
				return errors.New("want a command line or a list of words (program and arguments)")
			}
			c.Argv = append(c.Argv, e.Value)
		}
		return nil
	}
	return errors.New("want a command line or a list of words (program and arguments)")
}

// sourceKeys are the keys each type takes besides type and timeout.
func sourceKeys(typ string) []string {
	switch typ {
	case SourceLoadavg:
		return []string{"max_per_core"}
	case SourcePSI:
		return []string{"resource", "max"}
	case SourceConnections:
		return []string{"ports", "max"}
	case SourceCommand:
		return []string{"command"}
	case SourceFile:
		return []string{"path"}
	case SourceHTTP:
		return []string{"url"}
	}
	return nil
}

// validateReporting fills the defaults of the agent and load blocks and
// checks them.
func validateReporting(rs *Realserver, doc *config.Doc) config.Errors {
	var errs config.Errors
	add := func(path, format string, args ...any) { errs = append(errs, doc.Errorf(path, format, args...)) }
	if a := rs.Agent; a != nil {
		if a.Listen == "" {
			add("realserver.agent.listen", "listen is required: the host:port the agent answers on, such as 0.0.0.0:3262")
		} else if err := checkHostPort(a.Listen); err != nil {
			add("realserver.agent.listen", "%v", err)
		}
		if a.HTTP != "" {
			if err := checkHostPort(a.HTTP); err != nil {
				add("realserver.agent.http", "%v", err)
			} else if a.HTTP == a.Listen {
				add("realserver.agent.http", "http and listen are the same address")
			}
		}
		if a.TokenFile != "" && !filepath.IsAbs(a.TokenFile) {
			add("realserver.agent.token_file", "want an absolute path, got %q", a.TokenFile)
		}
	}
	l := rs.Load
	if l == nil {
		return errs
	}
	if rs.Agent == nil {
		add("realserver.load", "load sources need an agent to report them: add realserver.agent")
	}
	if l.Interval == 0 {
		l.Interval = config.Duration(DefaultLoadInterval)
	} else if l.Interval.D() < 100*time.Millisecond {
		add("realserver.load.interval", "want at least 100ms, got %s", l.Interval)
	}
	switch l.Combine {
	case "":
		l.Combine = string(load.CombineMin)
	case string(load.CombineMin), string(load.CombineAverage):
	default:
		add("realserver.load.combine", "want min or average, got %q", l.Combine)
	}
	for i := range l.Sources {
		errs = append(errs, validateSource(&l.Sources[i], config.Index("realserver.load.sources", i), l.Interval.D(), doc)...)
	}
	return errs
}

func validateSource(s *SourceConfig, p string, interval time.Duration, doc *config.Doc) config.Errors {
	var errs config.Errors
	key := func(k string) string { return config.Join(p, k) }
	add := func(k, format string, args ...any) { errs = append(errs, doc.Errorf(key(k), format, args...)) }
	types := "cpu, loadavg, psi, connections, command, file or http"
	switch s.Type {
	case SourceCPU, SourceLoadavg, SourcePSI, SourceConnections, SourceCommand, SourceFile, SourceHTTP:
	case "":
		add("type", "type is required: %s", types)
		return errs
	default:
		add("type", "want %s, got %q", types, s.Type)
		return errs
	}
	allowed := map[string]bool{}
	for _, k := range sourceKeys(s.Type) {
		allowed[k] = true
	}
	for _, k := range []string{"max_per_core", "resource", "max", "ports", "command", "path", "url"} {
		if !allowed[k] && doc.Has(key(k)) {
			add(k, "%s does not apply to a %s source", k, s.Type)
		}
	}
	if s.Timeout == 0 {
		s.Timeout = config.Duration(min(DefaultSourceTimeout, interval*maxSourceTimeoutRatio))
	} else if s.Timeout.D() > interval*maxSourceTimeoutRatio {
		add("timeout", "want at most the load interval (%s), got %s", interval, s.Timeout)
	}
	switch s.Type {
	case SourceLoadavg:
		if s.MaxPerCore == 0 && !doc.Has(key("max_per_core")) {
			s.MaxPerCore = DefaultMaxPerCore
		} else if !(s.MaxPerCore > 0) {
			add("max_per_core", "want a load per CPU above 0, such as 2.0, got %v", s.MaxPerCore)
		}
	case SourcePSI:
		switch s.Resource {
		case "cpu", "memory", "io":
		case "":
			add("resource", "resource is required: cpu, memory or io")
		default:
			add("resource", "want cpu, memory or io, got %q", s.Resource)
		}
		if s.Max == 0 && !doc.Has(key("max")) {
			s.Max = DefaultPSIMax
		} else if !(s.Max > 0 && s.Max <= 100) {
			add("max", "want the avg10 percentage that means no capacity left, above 0 and at most 100, got %v", s.Max)
		}
	case SourceConnections:
		if len(s.Ports) == 0 {
			add("ports", "ports is required: the local ports whose established connections count")
		}
		for j, port := range s.Ports {
			if port == 0 {
				add(config.Index("ports", j), "port 0 is not a port")
			}
		}
		if !doc.Has(key("max")) && s.Max == 0 {
			add("max", "max is required: the number of connections that means no capacity left")
		} else if s.Max < 1 || s.Max != float64(int(s.Max)) {
			add("max", "want a whole number of connections, at least 1, got %v", s.Max)
		}
	case SourceCommand:
		if s.Command.IsZero() || strings.TrimSpace(s.Command.Shell) == "" && len(s.Command.Argv) == 0 {
			add("command", "command is required: a command line (run by /bin/sh -c) or a list of words")
		} else if len(s.Command.Argv) > 0 && !filepath.IsAbs(s.Command.Argv[0]) {
			add("command", "the program of a command list must be an absolute path, got %q", s.Command.Argv[0])
		}
	case SourceFile:
		if s.Path == "" {
			add("path", "path is required")
		} else if !filepath.IsAbs(s.Path) {
			add("path", "want an absolute path, got %q", s.Path)
		}
	case SourceHTTP:
		u, err := url.Parse(s.URL)
		switch {
		case s.URL == "":
			add("url", "url is required, such as http://127.0.0.1:8080/capacity")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			add("url", "want an http:// or https:// URL, got %q", s.URL)
		}
	}
	return errs
}

func checkHostPort(s string) error {
	if _, _, err := net.SplitHostPort(s); err != nil {
		return fmt.Errorf("want host:port such as 0.0.0.0:3262, got %q", s)
	}
	return nil
}
