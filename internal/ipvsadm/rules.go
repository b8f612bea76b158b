package ipvsadm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// ErrNotRule is wrapped by ParseSave's error for a command that is valid
// for ipvsadm but does not describe table contents (-L, --set,
// --start-daemon, ...).
var ErrNotRule = errors.New("not a table rule")

// Note is a line of a script that ParseScript did not turn into table
// contents, with the reason.
type Note struct {
	Pos    Pos
	Text   string // the line as written
	Reason string
}

func errAt(p Pos, format string, args ...any) error {
	return &ParseError{Pos: p, Msg: fmt.Sprintf(format, args...)}
}

// Rules builds a table from ipvsadm commands applied in order, checking
// each the way ipvsadm and the kernel would.
type Rules struct {
	t        *ipvs.Table
	services Services
	loader   servicesOnce
	where    map[ipvs.ServiceKey]Pos // the -A of each service
}

// NewRules starts from an empty table. Port names are looked up in
// services; nil reads DefaultServicesFile at the first name.
func NewRules(services Services) *Rules {
	return &Rules{t: &ipvs.Table{}, services: services, where: map[ipvs.ServiceKey]Pos{}}
}

// Where returns the position of the command that added the service of
// an entry of Table.
func (r *Rules) Where(se ipvs.ServiceEntry) Pos { return r.where[key(se.Service)] }

// Table returns the table built so far.
func (r *Rules) Table() *ipvs.Table { return r.t }

func (r *Rules) lookupPort(proto, name string) (uint16, error) {
	s := r.services
	if s == nil {
		var err error
		if s, err = r.loader.get(); err != nil {
			return 0, err
		}
	}
	return s.lookup(proto, name)
}

// Command applies one ipvsadm invocation given by its arguments (the
// words after "ipvsadm"). A command that ipvsadm accepts but that does
// not change the table (listing, --set, sync daemons) returns why in
// note. Errors are *ParseError naming the word at fault.
func (r *Rules) Command(args []Word) (note string, err error) {
	if len(args) == 0 {
		return "ipvsadm without arguments only lists the table", nil
	}
	c, err := r.parseCommand(args)
	if err != nil {
		return "", err
	}
	if c.note != "" {
		return c.note, nil
	}
	return "", r.apply(c)
}

// ParseSave reads rules in the format of "ipvsadm-save" / "ipvsadm -S" (and
// scripts of "ipvsadm -A/-a ..." lines) into a table, applying them in
// order as "ipvsadm -R" would. Any line that does not describe table
// contents is an error, as is any rule ipvsadm would reject.
func ParseSave(r io.Reader, name string) (*ipvs.Table, error) {
	t, notes, err := ParseScript(r, name)
	if err != nil {
		return nil, err
	}
	if len(notes) > 0 {
		n := notes[0]
		return nil, &ruleError{ParseError{Pos: n.Pos, Msg: n.Reason}}
	}
	return t, nil
}

type ruleError struct{ ParseError }

func (e *ruleError) Unwrap() error { return ErrNotRule }

// ParseScript is ParseSave for simple scripts, one command a line (with
// backslash continuations): commands that ipvsadm accepts but that do
// not describe table contents (listing, zeroing, timeouts, sync daemons)
// and lines that are not ipvsadm commands at all are returned as notes
// instead of failing. Malformed ipvsadm commands are still errors. Shell
// syntax (variables, branches) is not interpreted here.
func ParseScript(r io.Reader, name string) (*ipvs.Table, []Note, error) {
	rules := NewRules(nil)
	var notes []Note
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	lineNo, start := 0, 0
	var pending string
	line := func(n int, text string) error {
		words, err := splitLine(name, n, text)
		if err != nil || len(words) == 0 {
			return err
		}
		// Accept "ipvsadm ...", "/sbin/ipvsadm ..." as well as bare saved
		// rules.
		first := words[0]
		if path.Base(first.Text) == "ipvsadm" {
			words = words[1:]
		} else if !strings.HasPrefix(first.Text, "-") {
			notes = append(notes, Note{Pos: first.Pos, Text: strings.TrimSpace(text), Reason: "not an ipvsadm command"})
			return nil
		}
		note, err := rules.Command(words)
		if err != nil {
			return err
		}
		if note != "" {
			at := first.Pos
			if len(words) > 0 {
				at = words[0].Pos
			}
			notes = append(notes, Note{Pos: at, Text: strings.TrimSpace(text), Reason: note})
		}
		return nil
	}
	for sc.Scan() {
		lineNo++
		text := sc.Text()
		if pending == "" {
			start = lineNo
		}
		if strings.HasSuffix(text, "\\") {
			pending += strings.TrimSuffix(text, "\\") + " "
			continue
		}
		full := pending + text
		pending = ""
		if err := line(start, full); err != nil {
			return nil, nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	if pending != "" {
		if err := line(start, pending); err != nil {
			return nil, nil, err
		}
	}
	return rules.t, notes, nil
}

// key normalises a service key for lookups.
func key(s ipvs.Service) ipvs.ServiceKey {
	k := s.ServiceKey
	if k.FWMark != 0 {
		return ipvs.ServiceKey{Family: k.Family, FWMark: k.FWMark}
	}
	return k
}

func (r *Rules) find(k ipvs.ServiceKey) int {
	for i := range r.t.Services {
		if key(r.t.Services[i].Service) == k {
			return i
		}
	}
	return -1
}

func (r *Rules) apply(c *command) error {
	if c.cmd == "clear" {
		r.t.Services = nil
		return nil
	}
	k := key(c.svc)
	i := r.find(k)
	name := k.String()
	switch c.cmd {
	case "add-service":
		if i >= 0 {
			return errAt(c.svcCol, "service %s already exists", name)
		}
		c.svc.ServiceKey = k
		r.t.Services = append(r.t.Services, ipvs.ServiceEntry{Service: c.svc})
		r.where[k] = c.svcCol
		return nil
	case "edit-service", "delete-service", "add-server", "edit-server", "delete-server":
		if i < 0 {
			return errAt(c.svcCol, "no such service %s", name)
		}
	}
	se := &r.t.Services[i]
	switch c.cmd {
	case "edit-service":
		c.svc.ServiceKey = k
		se.Service = c.svc
		return nil
	case "delete-service":
		r.t.Services = append(r.t.Services[:i], r.t.Services[i+1:]...)
		return nil
	}
	j := -1
	for x := range se.Dests {
		if se.Dests[x].DestKey == c.dest.DestKey {
			j = x
		}
	}
	switch c.cmd {
	case "add-server":
		if j >= 0 {
			return errAt(c.seen["real-server"], "destination %s already exists in %s", c.dest.DestKey, name)
		}
		se.Dests = append(se.Dests, ipvs.DestEntry{Destination: c.dest})
	case "edit-server":
		if j < 0 {
			return errAt(c.seen["real-server"], "no such destination %s in %s", c.dest.DestKey, name)
		}
		se.Dests[j].Destination = c.dest
	case "delete-server":
		if j < 0 {
			return errAt(c.seen["real-server"], "no such destination %s in %s", c.dest.DestKey, name)
		}
		se.Dests = append(se.Dests[:j], se.Dests[j+1:]...)
	}
	return nil
}
