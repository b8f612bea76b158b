package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/pflag"
)

// logFlags are --log-level and --log-format, the same on both daemons.
type logFlags struct {
	level, format string
}

func (f *logFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.format, "log-format", "text", "text (logfmt) or json")
}

// logger builds the logger the flags ask for, writing to w. Under systemd
// (JOURNAL_STREAM set, and w being the journal's stream) the journal adds
// the time itself, so text lines leave it out.
func (f *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(f.level)); err != nil {
		return nil, &exitError{code: exitBadConfig, err: fmt.Errorf("--log-level: want debug, info, warn or error, got %q", f.level)}
	}
	opts := &slog.HandlerOptions{Level: l}
	switch f.format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		if os.Getenv("JOURNAL_STREAM") != "" && w == io.Writer(os.Stderr) {
			opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}
		}
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, &exitError{code: exitBadConfig, err: fmt.Errorf("--log-format: want text or json, got %q", f.format)}
}
