package healthz

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// Checker probes one target once. Check returns when the probe has an
// answer or ctx ends, whichever comes first; the caller gives ctx the
// spec's timeout.
type Checker interface {
	Check(ctx context.Context) Result
}

// Kinds of failure, the kind label of the errors metric.
const (
	KindTimeout     = "timeout"
	KindRefused     = "refused"
	KindReset       = "reset"
	KindUnreachable = "unreachable"
	KindTLS         = "tls"
	KindStatus      = "status"   // an HTTP status not expected
	KindMismatch    = "mismatch" // a body or reply that does not match
	KindProtocol    = "protocol" // a reply that could not be read
	KindRcode       = "rcode"    // a DNS response code not expected
	KindExit        = "exit"     // a command that exited non-zero
	KindOther       = "other"
)

// Result is the outcome of one check.
type Result struct {
	OK bool
	// Kind is the kind of failure, empty when OK.
	Kind string
	// Reason is short text for logs and status: "HTTP 503",
	// "connect: connection refused", "timeout after 1s".
	Reason  string
	Latency time.Duration
	At      time.Time // when the check started
}

// String returns the reason with the latency.
func (r Result) String() string {
	return fmt.Sprintf("%s (%s)", r.Reason, r.Latency.Round(time.Microsecond))
}

// Target is what one check probes.
type Target struct {
	// Addr is the address and port checked (the real server's, or the
	// spec's address/port when set).
	Addr netip.AddrPort
	// Env is the environment of an exec check (LVS_* variables).
	Env []string
}

// TargetOf returns the address a spec checks for a real server: the
// spec's address and port where set, the real server's otherwise.
func TargetOf(s *Spec, real netip.AddrPort) netip.AddrPort {
	addr, port := real.Addr(), real.Port()
	if s.Address != "" {
		if a, err := netip.ParseAddr(s.Address); err == nil {
			addr = a.Unmap()
		}
	}
	if s.Port != 0 {
		port = s.Port
	}
	if !s.NeedsPort() && s.Type != TypeExec {
		port = 0
	}
	return netip.AddrPortFrom(addr, port)
}

// New builds the checker of spec (with its defaults filled) for target.
func New(spec Spec, target Target) (Checker, error) {
	s := spec.WithDefaults()
	if s.NeedsPort() && target.Addr.Port() == 0 {
		return nil, fmt.Errorf("%s check of %s: no port to check", s.Type, target.Addr.Addr())
	}
	if !target.Addr.Addr().IsValid() {
		return nil, fmt.Errorf("%s check: no address to check", s.Type)
	}
	switch s.Type {
	case TypeTCP:
		return newTCP(&s, target.Addr), nil
	case TypeHTTP, TypeHTTPS:
		return newHTTP(&s, target.Addr)
	case TypeUDP:
		return newUDP(&s, target.Addr), nil
	case TypeICMP:
		return newICMP(&s, target.Addr.Addr(), icmpAuto), nil
	case TypeDNS:
		return newDNS(&s, target.Addr)
	case TypeExec:
		return newExec(&s, target.Env)
	}
	return nil, fmt.Errorf("health check type %q cannot be run", s.Type)
}

// pass returns a passing result.
func pass(start time.Time, reason string) Result {
	return Result{OK: true, Reason: reason, Latency: time.Since(start), At: start}
}

// passf returns a passing result with a formatted reason.
func passf(start time.Time, format string, args ...any) Result {
	return pass(start, fmt.Sprintf(format, args...))
}

// fail returns a failing result.
func fail(start time.Time, kind, format string, args ...any) Result {
	return Result{Kind: kind, Reason: fmt.Sprintf(format, args...), Latency: time.Since(start), At: start}
}

// failErr classifies err as a failure: a timeout (of ctx or of the
// socket), a refused or reset connection, an unreachable host, a TLS
// problem, or another error. The reason names the system call and its
// error without addresses ("connect: connection refused").
func failErr(ctx context.Context, start time.Time, timeout time.Duration, err error) Result {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout() || ctx.Err() == context.DeadlineExceeded:
		return fail(start, KindTimeout, "timeout after %s", timeout)
	case errors.Is(err, context.Canceled):
		return fail(start, KindOther, "canceled")
	}
	kind := KindOther
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = KindRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		kind = KindReset
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		kind = KindUnreachable
	case isTLSError(err):
		return fail(start, KindTLS, "TLS: %s", tlsReason(err))
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return fail(start, kind, "%s", se.Error())
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fail(start, kind, "%s: %v", pe.Op, pe.Err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return fail(start, kind, "%s: %s", oe.Op, oe.Err)
	}
	return fail(start, kind, "%s", err)
}

func isTLSError(err error) bool {
	var (
		ce  *tls.CertificateVerificationError
		ae  tls.AlertError
		rhe tls.RecordHeaderError
		ue  x509.UnknownAuthorityError
		he  x509.HostnameError
		cie x509.CertificateInvalidError
	)
	return errors.As(err, &ce) || errors.As(err, &ae) || errors.As(err, &rhe) ||
		errors.As(err, &ue) || errors.As(err, &he) || errors.As(err, &cie) ||
		strings.HasPrefix(err.Error(), "tls: ")
}

func tlsReason(err error) string {
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		err = ce.Err
	}
	return strings.TrimPrefix(err.Error(), "tls: ")
}

// clip shortens s to one line of at most n bytes, for reasons.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
