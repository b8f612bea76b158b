package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lvs-node/lvs-node/director"
)

// painter colours text on a terminal (and never otherwise, nor with
// NO_COLOR set).
type painter struct{ on bool }

func newPainter(w io.Writer) painter {
	return painter{on: isTerminal(w) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"}
}

func (p painter) paint(code, s string) string {
	if !p.on || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p painter) bold(s string) string   { return p.paint("1", s) }
func (p painter) red(s string) string    { return p.paint("31", s) }
func (p painter) green(s string) string  { return p.paint("32", s) }
func (p painter) yellow(s string) string { return p.paint("33", s) }
func (p painter) dim(s string) string    { return p.paint("2", s) }

// cell is one table cell: its text and how to paint it.
type cell struct {
	text  string
	paint func(string) string
}

// table prints rows aligned by the width of their text (paint codes take
// no room), two spaces apart, each line indented.
type table struct {
	indent string
	rows   [][]cell
}

func (t *table) add(cells ...cell) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	for _, r := range t.rows {
		var b strings.Builder
		b.WriteString(t.indent)
		for i, c := range r {
			s := c.text
			if c.paint != nil {
				s = c.paint(s)
			}
			b.WriteString(s)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func plain(s string) cell { return cell{text: s} }

// renderDirector prints the director's status: a summary line, then per
// virtual service a line and a table of its real servers.
func renderDirector(w io.Writer, p painter, st *director.Status, now time.Time) {
	ready := p.green("ready")
	if !st.Ready {
		ready = p.red("NOT READY: " + st.NotReady)
	}
	head := []string{p.bold("director"), ready, "ha " + st.HARole}
	if st.Config != "" {
		head = append(head, "config "+st.Config)
	}
	if !st.LastApply.IsZero() {
		head = append(head, "last apply "+ago(now, st.LastApply))
	}
	head = append(head, fmt.Sprintf("reloads %d (%d refused)", st.Reloads, st.Refused), fmt.Sprintf("drift repairs %d", st.Repairs))
	fmt.Fprintln(w, strings.Join(head, "  "))
	for _, s := range st.Services {
		fmt.Fprintln(w)
		line := []string{p.bold(s.Name), s.Service, s.Scheduler}
		if s.Check != "" {
			line = append(line, "check "+s.Check)
		}
		if s.Feedback {
			line = append(line, "load feedback")
		}
		if q := s.Quorum; q != nil {
			state := p.green("met")
			if !q.Met {
				state = p.red("LOST")
			}
			line = append(line, fmt.Sprintf("serving %d (min %d) %s", q.Serving, q.MinUp, state))
		}
		if ss := s.SorryServer; ss != nil {
			state := "standby"
			if ss.Active {
				state = p.yellow("SERVING")
			}
			line = append(line, "sorry "+ss.Address+" "+state)
		}
		fmt.Fprintln(w, strings.Join(line, "  "))
		t := &table{indent: "  "}
		t.add(cell{"REAL SERVER", p.dim}, cell{"HEALTH", p.dim}, cell{"WEIGHT", p.dim}, cell{"CAPACITY", p.dim},
			cell{"CONNS", p.dim}, cell{"WHY", p.dim}, cell{"CHANGED", p.dim})
		for _, r := range s.RealServers {
			t.add(realServerRow(p, r, now)...)
		}
		t.write(w)
	}
}

// realServerRow is one real server's line.
func realServerRow(p painter, r director.RealServerStatus, now time.Time) []cell {
	health := cell{text: r.Health}
	switch r.Health {
	case "up":
		health.paint = p.green
	case "down":
		health.paint = p.red
	case "pending":
		health.paint = p.yellow
	}
	weight := cell{text: strconv.Itoa(int(r.ConfiguredWeight))}
	eff := strconv.Itoa(int(r.EffectiveWeight))
	if !r.Present {
		eff = "removed"
	}
	if !r.Present || r.EffectiveWeight != r.ConfiguredWeight {
		weight.text += " -> " + eff
		weight.paint = p.yellow
	}
	if r.KernelWeight != nil && r.Present && *r.KernelWeight != r.EffectiveWeight {
		weight.text += fmt.Sprintf(" (kernel %d)", *r.KernelWeight)
	}
	capacity := "-"
	if r.Capacity != nil {
		capacity = strconv.FormatFloat(*r.Capacity*100, 'f', 0, 64) + "%"
	}
	if a := r.Agent; a != nil && a.Stale {
		capacity = "stale"
	}
	why := r.Reason
	if why == "" {
		why = "-"
	}
	changed := "-"
	if !r.LastChange.IsZero() {
		changed = ago(now, r.LastChange)
	}
	return []cell{plain(r.Address), health, weight, plain(capacity),
		plain(fmt.Sprintf("%d/%d", r.ActiveConns, r.InactiveConns)), plain(why), plain(changed)}
}

// ago says how long before now t was, in its largest unit.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
