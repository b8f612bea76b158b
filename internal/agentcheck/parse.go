package agentcheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Errors of reading a reply.
var (
	// ErrIncomplete: the agent closed the connection before ending its
	// line with CR or LF, or the line holds a NUL byte.
	ErrIncomplete = errors.New("agent reply: incomplete line")
	// ErrTooLong: no line end within the reading limit.
	ErrTooLong = errors.New("agent reply: line too long")
)

// Parse reads the reply line at the start of data: the text up to the
// first CR or LF (what follows is ignored). It returns ErrIncomplete when
// data holds no line end. Words it does not understand are reported in a
// *SyntaxError, returned with the reply made of the words it understood.
func Parse(data []byte) (Reply, error) {
	end := bytes.IndexAny(data, "\r\n")
	if end < 0 {
		return Reply{}, ErrIncomplete
	}
	line := data[:end]
	if bytes.IndexByte(line, 0) >= 0 {
		return Reply{}, ErrIncomplete
	}
	return parseLine(string(line))
}

// ParseString is Parse for a string.
func ParseString(s string) (Reply, error) { return Parse([]byte(s)) }

func isSep(c byte) bool { return c == ' ' || c == '\t' || c == ',' }

func parseLine(line string) (Reply, error) {
	var r Reply
	var bad []WordError
	i := 0
	for i < len(line) {
		if isSep(line[i]) {
			i++
			continue
		}
		if line[i] == '#' {
			i++
			for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
				i++
			}
			r.Description = line[i:]
			break
		}
		j := i + 1
		for j < len(line) && !isSep(line[j]) {
			j++
		}
		if msg := r.word(line[i:j]); msg != "" {
			bad = append(bad, WordError{Word: line[i:j], Msg: msg})
		}
		i = j
	}
	if len(bad) > 0 {
		return r, &SyntaxError{Words: bad}
	}
	return r, nil
}

// word applies one word to r and returns why it is not understood, or "".
func (r *Reply) word(w string) string {
	switch strings.ToLower(w) {
	case "up":
		r.Health = HealthUp
	case "down":
		r.Health = HealthDown
	case "fail":
		r.Health = HealthFail
	case "stopped":
		r.Health = HealthStopped
	case "ready":
		r.Admin = AdminReady
	case "drain":
		r.Admin = AdminDrain
	case "maint":
		r.Admin = AdminMaint
	default:
		switch {
		case w[0] >= '0' && w[0] <= '9' && strings.IndexByte(w, '%') >= 0:
			return r.setPercent(w)
		case hasPrefixFold(w, "maxconn:"):
			n, ok := digits(w[len("maxconn:"):], MaxMaxConn)
			if !ok {
				r.HasMaxConn, r.MaxConn = false, 0
				return "maxconn: want a whole number"
			}
			r.HasMaxConn, r.MaxConn = true, n
		case hasPrefixFold(w, "weight:"):
			v := w[len("weight:"):]
			if strings.HasSuffix(v, "%") {
				return r.setPercent(v)
			}
			n, ok := digits(v, MaxWeight+1)
			if !ok || n > MaxWeight {
				r.WeightKind, r.Weight = WeightNone, 0
				return fmt.Sprintf("weight: want a whole number from 0 to %d, or a percentage", MaxWeight)
			}
			r.WeightKind, r.Weight = WeightAbsolute, n
		default:
			return "unknown word"
		}
	}
	return ""
}

// setPercent reads "N%" as HAProxy does: digits, then exactly one '%';
// larger values are capped at MaxPercent. A bad weight word clears the
// weight, as HAProxy then applies none.
func (r *Reply) setPercent(w string) string {
	n, ok := digits(strings.TrimSuffix(w, "%"), MaxPercent)
	if !ok || !strings.HasSuffix(w, "%") {
		r.WeightKind, r.Weight = WeightNone, 0
		return "weight: want digits followed by %"
	}
	r.WeightKind, r.Weight = WeightPercent, n
	return ""
}

// digits reads a non-empty run of decimal digits, capping the value at
// limit.
func digits(s string, limit int) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < limit {
			n = n*10 + int(c-'0')
		}
	}
	return min(n, limit), true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// ReadReply reads one reply from r: up to the first CR or LF, at most
// limit bytes. An agent that closes before the line end gives
// ErrIncomplete; one that sends limit bytes without a line end gives
// ErrTooLong. Errors of r are returned wrapped.
func ReadReply(r io.Reader, limit int) (Reply, error) {
	buf := make([]byte, 0, min(limit, 512))
	tmp := make([]byte, min(limit, 512))
	for {
		n, err := r.Read(tmp[:min(len(tmp), limit-len(buf))])
		if n > 0 {
			chunk := tmp[:n]
			buf = append(buf, chunk...)
			if bytes.ContainsAny(chunk, "\r\n") {
				return Parse(buf)
			}
			if len(buf) >= limit {
				return Reply{}, ErrTooLong
			}
		}
		if errors.Is(err, io.EOF) {
			return Reply{}, ErrIncomplete
		}
		if err != nil {
			return Reply{}, fmt.Errorf("agent reply: %w", err)
		}
	}
}
