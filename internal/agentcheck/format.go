package agentcheck

import (
	"strconv"
	"strings"
)

// Format writes r as one reply line ended by LF, in the order health,
// admin, weight, maxconn, description. A relative weight is written as
// "N%" (what HAProxy reads), an absolute one as "weight:N". CR, LF and NUL
// in the description become spaces and its leading blanks are dropped, so
// that the line reads back as written. r should pass Validate.
func (r Reply) Format() string { return string(r.AppendFormat(nil)) }

// String is Format without the line end.
func (r Reply) String() string { return strings.TrimSuffix(r.Format(), "\n") }

// AppendFormat appends the line Format writes to b.
func (r Reply) AppendFormat(b []byte) []byte {
	start := len(b)
	word := func(w string) {
		if len(b) > start {
			b = append(b, ' ')
		}
		b = append(b, w...)
	}
	if s := r.Health.String(); s != "" {
		word(s)
	}
	if s := r.Admin.String(); s != "" {
		word(s)
	}
	switch r.WeightKind {
	case WeightPercent:
		word(strconv.Itoa(r.Weight) + "%")
	case WeightAbsolute:
		word("weight:" + strconv.Itoa(r.Weight))
	}
	if r.HasMaxConn {
		word("maxconn:" + strconv.Itoa(r.MaxConn))
	}
	if d := cleanDescription(r.Description); d != "" {
		word("# " + d)
	}
	return append(b, '\n')
}

func cleanDescription(d string) string {
	if strings.ContainsAny(d, "\r\n\x00") {
		b := []byte(d)
		for i, c := range b {
			if c == '\r' || c == '\n' || c == 0 {
				b[i] = ' '
			}
		}
		d = string(b)
	}
	return strings.TrimLeft(d, " \t")
}
