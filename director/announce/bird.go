package announce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// The static protocols of the include file, one per family. bird.conf
// exports them to its BGP peers (export where proto = "lvs_node4").
const (
	Proto4 = "lvs_node4"
	Proto6 = "lvs_node6"
	// protoPattern names both in birdc commands.
	protoPattern = `"lvs_node?"`
)

// BIRD announces VIPs through a BIRD daemon. Its methods are safe for
// concurrent use; calls are serialised.
type BIRD struct {
	IncludeFile string        // written atomically, mode 0644
	Birdc       string        // the birdc program
	Socket      string        // BIRD's control socket
	Timeout     time.Duration // bounds one birdc call (10 s when 0)

	mu sync.Mutex
	// applied is the include file BIRD last accepted; nil when unknown
	// (at start, or after a failure), which forces the next Announce.
	applied []byte
	// disabled: a withdrawal fell back to "birdc disable"; the next
	// announcement enables the protocols again.
	disabled bool
}

// Render is the include file announcing vips (sorted, one route each).
// A static protocol with no route announces nothing.
func Render(vips []netip.Addr) []byte {
	var v4, v6 []netip.Addr
	for _, a := range vips {
		if a = a.Unmap(); a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	slices.SortFunc(v4, netip.Addr.Compare)
	slices.SortFunc(v6, netip.Addr.Compare)
	var b bytes.Buffer
	b.WriteString("# Written by lvs-node director: the VIPs this director announces now.\n")
	b.WriteString("# Included by bird.conf. Do not edit: lvs-node rewrites it.\n")
	for _, f := range []struct {
		proto, channel string
		vips           []netip.Addr
	}{{Proto4, "ipv4", slices.Compact(v4)}, {Proto6, "ipv6", slices.Compact(v6)}} {
		fmt.Fprintf(&b, "protocol static %s {\n\t%s;\n", f.proto, f.channel)
		for _, a := range f.vips {
			fmt.Fprintf(&b, "\troute %s blackhole;\n", netip.PrefixFrom(a, a.BitLen()))
		}
		b.WriteString("}\n")
	}
	return b.Bytes()
}

// Announce makes BIRD announce exactly vips: it writes the include file
// (atomically: BIRD never reads half of it) and runs birdc configure,
// unless BIRD already accepted the same file. When BIRD cannot be made
// to re-read its configuration and vips is empty, the static protocols
// are disabled instead, which withdraws their routes without a re-read.
func (b *BIRD) Announce(ctx context.Context, vips []netip.Addr) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := Render(vips)
	if b.applied != nil && bytes.Equal(b.applied, want) {
		return nil
	}
	b.applied = nil
	if err := writeAtomic(b.IncludeFile, want); err != nil {
		return err
	}
	err := b.configure(ctx)
	if err != nil && len(vips) == 0 {
		if derr := b.birdc(ctx, "disable", protoPattern); derr == nil {
			b.disabled = true
			return fmt.Errorf("%w; withdrew every VIP by disabling %s and %s instead", err, Proto4, Proto6)
		}
	}
	if err != nil {
		return err
	}
	if b.disabled && len(vips) > 0 {
		if err := b.birdc(ctx, "enable", protoPattern); err != nil {
			return err
		}
		b.disabled = false
	}
	b.applied = want
	return nil
}

// configure asks BIRD to re-read its configuration.
func (b *BIRD) configure(ctx context.Context) error {
	out, err := b.run(ctx, "configure")
	if err != nil {
		return err
	}
	// 0003 Reconfigured, 0004 in progress, 0005 queued, 0018/0019: no change needed.
	for _, ok := range []string{"0003", "0004", "0005", "0018", "0019"} {
		if codeLine(out, ok) != "" {
			return nil
		}
	}
	return fmt.Errorf("birdc configure: unexpected answer: %s", lastLine(out))
}

// birdc runs one command that must not fail, ignoring its text.
func (b *BIRD) birdc(ctx context.Context, args ...string) error {
	_, err := b.run(ctx, args...)
	return err
}

// Status asks BIRD for its status and reports whether the include file's
// protocols are loaded: the version line, or why BIRD does not answer or
// does not use the file.
func (b *BIRD) Status(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out, err := b.run(ctx, "show", "status")
	if err != nil {
		return "", err
	}
	version := strings.TrimSpace(strings.TrimPrefix(codeLine(out, "1000"), "1000-"))
	if codeLine(out, "0013") == "" {
		return version, fmt.Errorf("BIRD is not up and running: %s", lastLine(out))
	}
	if _, err := b.run(ctx, "show", "protocols", Proto4); err != nil {
		return version, fmt.Errorf("BIRD does not know protocol %s: does bird.conf include %s? (%w)", Proto4, b.IncludeFile, err)
	}
	return version, nil
}

// run runs birdc -v (replies with their codes) against the socket,
// bounded by the timeout; a reply code of 8000 and above, or birdc's
// failure, is an error naming BIRD's own message.
func (b *BIRD) run(ctx context.Context, args ...string) (string, error) {
	t := b.Timeout
	if t <= 0 {
		t = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.Birdc, append([]string{"-v", "-s", b.Socket}, args...)...)
	cmd.WaitDelay = time.Second
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	what := "birdc " + strings.Join(args, " ")
	switch {
	case ctx.Err() != nil:
		return out, fmt.Errorf("%s: BIRD did not answer within %s: %w", what, t, ctx.Err())
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, os.ErrNotExist):
		return out, fmt.Errorf("%s: %s is not installed (Debian: apt-get install bird2): %w", what, b.Birdc, err)
	case strings.Contains(out, "Unable to connect"):
		return out, fmt.Errorf("%s: BIRD is not running or not listening on %s: %s", what, b.Socket, strings.TrimSpace(out))
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) >= 5 && (line[0] == '8' || line[0] == '9') && isCode(line[:4]) {
			return out, fmt.Errorf("%s: BIRD refused: %s", what, strings.TrimSpace(line[5:]))
		}
	}
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", what, err, lastLine(out))
	}
	return out, nil
}

func isCode(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(s) == 4
}

// codeLine returns the first line of out with reply code code.
func codeLine(out, code string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, code+" ") || strings.HasPrefix(line, code+"-") {
			return line
		}
	}
	return ""
}

func lastLine(out string) string {
	out = strings.TrimSpace(out)
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		return out[i+1:]
	}
	return out
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, synced, then renamed over it.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write BIRD include file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write BIRD include file: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write BIRD include file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync BIRD include file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write BIRD include file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace BIRD include file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
