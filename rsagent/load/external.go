package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Command is the command source: a program whose output is the content
// (see ParseContent). It runs in a process group of its own, killed
// whole when ctx ends.
type Command struct {
	argv []string
}

// NewCommand runs argv directly.
func NewCommand(argv []string) (*Command, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("command: empty")
	}
	return &Command{argv: append([]string(nil), argv...)}, nil
}

// NewShellCommand runs line through /bin/sh -c.
func NewShellCommand(line string) (*Command, error) {
	if strings.TrimSpace(line) == "" {
		return nil, errors.New("command: empty")
	}
	return &Command{argv: []string{"/bin/sh", "-c", line}}, nil
}

// limitedBuffer keeps the first n bytes written and drops the rest.
type limitedBuffer struct {
	bytes.Buffer
	n int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.n - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Read implements Source.
func (c *Command) Read(ctx context.Context) (Reading, error) {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &limitedBuffer{n: maxContent}
	errOut := &limitedBuffer{n: 512}
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Start(); err != nil {
		return Reading{}, fmt.Errorf("command: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// Kill the whole group: a shell's children too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return Reading{}, fmt.Errorf("command %s: killed: %w", c.argv[0], ctx.Err())
	}
	if err != nil {
		msg := strings.TrimSpace(errOut.String())
		if msg != "" {
			return Reading{}, fmt.Errorf("command %s: %w: %s", c.argv[0], err, msg)
		}
		return Reading{}, fmt.Errorf("command %s: %w", c.argv[0], err)
	}
	r, err := ParseContent(out.String())
	if err != nil {
		return Reading{}, fmt.Errorf("command %s: %w", c.argv[0], err)
	}
	return r, nil
}

// File is the file source: a file whose content is read (see
// ParseContent).
type File struct {
	path string
}

// NewFile reads path at each reading.
func NewFile(path string) (*File, error) {
	if path == "" {
		return nil, errors.New("file: empty path")
	}
	return &File{path: path}, nil
}

// Read implements Source.
func (f *File) Read(context.Context) (Reading, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return Reading{}, fmt.Errorf("file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxContent))
	if err != nil {
		return Reading{}, fmt.Errorf("file %s: %w", f.path, err)
	}
	r, err := ParseContent(string(data))
	if err != nil {
		return Reading{}, fmt.Errorf("file %s: %w", f.path, err)
	}
	return r, nil
}

// HTTP is the http source: the body of a 2xx answer to GET (see
// ParseContent). Proxy settings of the environment are not used.
type HTTP struct {
	url    string
	client *http.Client
}

// NewHTTP gets url at each reading.
func NewHTTP(url string) (*HTTP, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, fmt.Errorf("http: want an http:// or https:// URL, got %q", url)
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true, ResponseHeaderTimeout: time.Minute}
	return &HTTP{url: url, client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}, nil
}

// Read implements Source.
func (h *HTTP) Read(ctx context.Context) (Reading, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return Reading{}, fmt.Errorf("http: %w", err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return Reading{}, fmt.Errorf("http: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxContent))
	if err != nil {
		return Reading{}, fmt.Errorf("http %s: %w", h.url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Reading{}, fmt.Errorf("http %s: status %s", h.url, resp.Status)
	}
	r, err := ParseContent(string(data))
	if err != nil {
		return Reading{}, fmt.Errorf("http %s: %w", h.url, err)
	}
	return r, nil
}
