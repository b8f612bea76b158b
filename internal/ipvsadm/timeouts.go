package ipvsadm

import "strconv"

// SetTimeouts are the connection timeouts of "ipvsadm --set TCP TCPFIN
// UDP", in seconds; 0 leaves the kernel's value as it is.
type SetTimeouts struct {
	TCP, TCPFin, UDP uint32
}

// MaxSetTimeout is ipvsadm's MAX_TIMEOUT (31 days), in seconds.
const MaxSetTimeout = 86400 * 31

// parseSetValues reads the three values of --set as ipvsadm does: exactly
// three whole numbers from 0 to 31 days.
func parseSetValues(args []Word, cmd Pos) (SetTimeouts, error) {
	if len(args) != 3 {
		if len(args) > 3 {
			return SetTimeouts{}, errAt(args[3].Pos, "unexpected argument %q", args[3].Text)
		}
		return SetTimeouts{}, errAt(cmd, "--set option requires 3 timeout values")
	}
	var v [3]uint32
	for i, a := range args {
		n, err := strconv.ParseUint(a.Text, 10, 32)
		if err != nil || n > MaxSetTimeout {
			return SetTimeouts{}, errAt(a.Pos, "invalid timeout value %q specified", a.Text)
		}
		v[i] = uint32(n)
	}
	return SetTimeouts{TCP: v[0], TCPFin: v[1], UDP: v[2]}, nil
}

// recordTimeouts applies one --set: a non-zero value replaces the one
// before, as in the kernel.
func (r *Rules) recordTimeouts(t SetTimeouts) {
	if r.timeouts == nil {
		r.timeouts = &SetTimeouts{}
	}
	for _, f := range []struct {
		dst *uint32
		v   uint32
	}{{&r.timeouts.TCP, t.TCP}, {&r.timeouts.TCPFin, t.TCPFin}, {&r.timeouts.UDP, t.UDP}} {
		if f.v != 0 {
			*f.dst = f.v
		}
	}
}

// Timeouts returns what the --set commands applied so far asked for, and
// whether one of them changes a timeout (--set 0 0 0 changes none).
func (r *Rules) Timeouts() (SetTimeouts, bool) {
	if r.timeouts == nil || *r.timeouts == (SetTimeouts{}) {
		return SetTimeouts{}, false
	}
	return *r.timeouts, true
}
