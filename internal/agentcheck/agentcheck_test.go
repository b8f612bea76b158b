package agentcheck

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func pct(n int) Reply { return Reply{WeightKind: WeightPercent, Weight: n} }

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Reply
		badWord string // a word the parser must report
		err     error
	}{
		{in: "up 75%\n", want: Reply{Health: HealthUp, WeightKind: WeightPercent, Weight: 75}},
		{in: "weight:50\n", want: Reply{WeightKind: WeightAbsolute, Weight: 50}},
		{in: "WEIGHT:50%\n", want: pct(50)},
		{in: "drain\n", want: Reply{Admin: AdminDrain}},
		{in: "75%,maint # note\n", want: Reply{Admin: AdminMaint, WeightKind: WeightPercent, Weight: 75, Description: "note"}},
		{in: "up 75%\r\n", want: Reply{Health: HealthUp, WeightKind: WeightPercent, Weight: 75}},
		{in: "up 75%\rdown\n", want: Reply{Health: HealthUp, WeightKind: WeightPercent, Weight: 75}},
		{in: "up 75%", err: ErrIncomplete},
		{in: "", err: ErrIncomplete},
		{in: "up\x00 75%\n", err: ErrIncomplete},
		{in: "\n", want: Reply{}},
		{in: " \t,,\n", want: Reply{}},
		// Case-insensitive, any order, last of a kind wins.
		{in: "DOWN Up 10% 20% Ready DRAIN maxconn:3 MAXCONN:7\n", want: Reply{Health: HealthUp, Admin: AdminDrain, WeightKind: WeightPercent, Weight: 20, HasMaxConn: true, MaxConn: 7}},
		{in: "fail\n", want: Reply{Health: HealthFail}},
		{in: "stopped,ready\n", want: Reply{Health: HealthStopped, Admin: AdminReady}},
		{in: "\tup\t0%\t\n", want: Reply{Health: HealthUp, WeightKind: WeightPercent, Weight: 0}},
		{in: "0075%\n", want: pct(75)},
		{in: "99999999999999999999999%\n", want: pct(MaxPercent)},
		{in: "25601%\n", want: pct(MaxPercent)},
		{in: "up # agent says: all fine, 3 workers \n", want: Reply{Health: HealthUp, Description: "agent says: all fine, 3 workers "}},
		{in: "up #\n", want: Reply{Health: HealthUp}},
		{in: "#up 50%\n", want: Reply{Description: "up 50%"}},
		// Bad words are reported; the rest applies, as in HAProxy.
		{in: "up 7%5\n", want: Reply{Health: HealthUp}, badWord: "7%5"},
		{in: "50% 7%5\n", want: Reply{}, badWord: "7%5"},
		{in: "75\n", want: Reply{}, badWord: "75"},
		{in: "-5%\n", want: Reply{}, badWord: "-5%"},
		{in: "up#x\n", want: Reply{}, badWord: "up#x"},
		{in: "maxconn:\n", want: Reply{}, badWord: "maxconn:"},
		{in: "maxconn:-1 drain\n", want: Reply{Admin: AdminDrain}, badWord: "maxconn:-1"},
		{in: "weight:70000\n", want: Reply{}, badWord: "weight:70000"},
		{in: "weight:x%\n", want: Reply{}, badWord: "weight:x%"},
		{in: "hello up\n", want: Reply{Health: HealthUp}, badWord: "hello"},
	}
	for _, tc := range tests {
		got, err := ParseString(tc.in)
		switch {
		case tc.err != nil:
			if !errors.Is(err, tc.err) {
				t.Errorf("Parse(%q): err %v, want %v", tc.in, err, tc.err)
			}
			continue
		case tc.badWord != "":
			var se *SyntaxError
			if !errors.As(err, &se) || len(se.Words) != 1 || se.Words[0].Word != tc.badWord {
				t.Errorf("Parse(%q): err %v, want a syntax error on %q", tc.in, err, tc.badWord)
			}
		case err != nil:
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		r    Reply
		want string
	}{
		{Reply{}, "\n"},
		{Reply{Health: HealthUp, Admin: AdminReady, WeightKind: WeightPercent, Weight: 75}, "up ready 75%\n"},
		{Reply{Admin: AdminDrain}, "drain\n"},
		{Reply{WeightKind: WeightAbsolute, Weight: 50, HasMaxConn: true, MaxConn: 0}, "weight:50 maxconn:0\n"},
		{Reply{Health: HealthDown, Description: "\t db\r\nunreachable"}, "down # db  unreachable\n"},
	}
	for _, tc := range tests {
		if got := tc.r.Format(); got != tc.want {
			t.Errorf("Format(%+v) = %q, want %q", tc.r, got, tc.want)
		}
		if err := tc.r.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", tc.r, err)
		}
	}
	for _, bad := range []Reply{
		{WeightKind: WeightPercent, Weight: MaxPercent + 1},
		{WeightKind: WeightAbsolute, Weight: -1},
		{HasMaxConn: true, MaxConn: -1},
		{Health: 9},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) accepted", bad)
		}
	}
}

func TestReadReply(t *testing.T) {
	r, err := ReadReply(iotest.OneByteReader(strings.NewReader("up 25%\nignored")), 64)
	if err != nil || r != (Reply{Health: HealthUp, WeightKind: WeightPercent, Weight: 25}) {
		t.Fatalf("ReadReply = %+v, %v", r, err)
	}
	if _, err := ReadReply(strings.NewReader("up 25%"), 64); !errors.Is(err, ErrIncomplete) {
		t.Errorf("no line end: %v, want ErrIncomplete", err)
	}
	if _, err := ReadReply(strings.NewReader(strings.Repeat("x", 100)), 64); !errors.Is(err, ErrTooLong) {
		t.Errorf("long line: %v, want ErrTooLong", err)
	}
	if _, err := ReadReply(iotest.ErrReader(io.ErrUnexpectedEOF), 64); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read error: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"up 75%\n", "weight:50\n", "drain\n", "75%,maint # note\n", "up 75%", "up 75%\r\n",
		"maxconn:10 ready\n", "#\n", "7%5\n", "weight:5%\n", "\x00\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if errors.Is(err, ErrIncomplete) {
			return
		}
		if verr := r.Validate(); verr != nil {
			t.Fatalf("Parse(%q) gave an invalid reply %+v: %v", data, r, verr)
		}
		if err != nil {
			return
		}
		line := r.Format()
		if strings.Count(line, "\n") != 1 || strings.ContainsAny(line, "\r\x00") {
			t.Fatalf("Format(%+v) = %q: not one line", r, line)
		}
		back, err := ParseString(line)
		if err != nil || back != r {
			t.Fatalf("round trip of %q: wrote %q, read %+v, %v; want %+v", data, line, back, err, r)
		}
	})
}
