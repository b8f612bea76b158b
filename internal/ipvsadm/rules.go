package ipvsadm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"syscall"

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
	timeouts *SetTimeouts            // what --set commands asked for (timeouts.go)
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
	if c.cmd == "set" {
		r.recordTimeouts(c.timeouts)
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

// kinds maps ipvsadm's commands to the operations they make.
func opKind(cmd string) (ipvs.OpKind, bool) {
	switch cmd {
	case "add-service":
		return ipvs.AddService, true
	case "edit-service":
		return ipvs.EditService, true
	case "delete-service":
		return ipvs.DelService, true
	case "add-server":
		return ipvs.AddDest, true
	case "edit-server":
		return ipvs.EditDest, true
	case "delete-server":
		return ipvs.DelDest, true
	}
	return 0, false
}

// apply makes the change of c with the kernel's rules (ipvs.ApplyOps),
// turning a refusal into an error at the word at fault.
func (r *Rules) apply(c *command) error {
	if c.cmd == "clear" {
		r.t.Services = nil
		return nil
	}
	kind, ok := opKind(c.cmd)
	if !ok {
		return nil
	}
	k := key(c.svc)
	c.svc.ServiceKey = k
	op := ipvs.Op{Kind: kind, Service: c.svc, Dest: c.dest}
	name := k.String()
	var refusal error
	r.t.Apply([]ipvs.Op{op}, func(_ int, err error) {
		switch {
		case errors.Is(err, syscall.EEXIST) && kind == ipvs.AddService:
			refusal = errAt(c.svcCol, "service %s already exists", name)
		case errors.Is(err, syscall.EEXIST):
			refusal = errAt(c.seen["real-server"], "destination %s already exists in %s", c.dest.DestKey, name)
		case errors.Is(err, syscall.ESRCH):
			refusal = errAt(c.svcCol, "no such service %s", name)
		case errors.Is(err, syscall.ENOENT):
			refusal = errAt(c.seen["real-server"], "no such destination %s in %s", c.dest.DestKey, name)
		default:
			refusal = errAt(c.svcCol, "the kernel refuses service %s: %v", name, err)
		}
	})
	if refusal == nil && kind == ipvs.AddService {
		r.where[k] = c.svcCol
	}
	return refusal
}
