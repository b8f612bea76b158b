package importer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/pattern"
	"mvdan.cc/sh/v3/syntax"

	"github.com/lvs-node/lvs-node/internal/ipvsadm"
)

// The shell reader imports what a director script programs when it is
// run as "SCRIPT start", without running anything: simple assignments
// are expanded, functions are called, "case" and "if" take the branch
// their (static) condition selects, "for" loops over fixed words are
// unrolled, and every ipvsadm command on the way is applied to a table.
// Whatever depends on the director at run time (command output, files,
// the environment) is an error where it would change the table and a
// note where it would not.

// scriptArg is the argument the script is imported as run with.
const scriptArg = "start"

// Bounds against runaway scripts.
const (
	maxShellSteps = 100000
	maxCallDepth  = 64
	maxVarLen     = 64 << 10
)

// shVar is a shell variable as far as it can be known statically.
type shVar struct {
	val     string
	unknown string // why the value cannot be known ("" when it can)
}

// shNote is a statement that did not program the table, with the reason.
type shNote struct {
	line   int
	text   string
	reason string
}

type shellRun struct {
	file    string
	src     []byte
	rules   *ipvsadm.Rules
	vars    map[string]shVar
	funcs   map[string]*syntax.Stmt
	args    []shVar
	sourced []string // "FILE (line N)" of files sourced and not read
	notes   []shNote
	steps   int
	depth   int
	exited  bool // exit ran
	ret     bool // return ran in the current function
}

// errStatic is the cause of an error on what cannot be known statically.
var errStatic = errors.New("cannot be known without running the script")

// unknownVarError is the use of a variable whose value cannot be known;
// root says why, for variables assigned from it.
type unknownVarError struct {
	error
	root string
}

func (e *unknownVarError) Unwrap() error { return e.error }

func (s *shellRun) pos(p syntax.Pos) ipvsadm.Pos {
	return ipvsadm.Pos{File: s.file, Line: int(p.Line()), Column: int(p.Col())}
}

func (s *shellRun) errAt(p syntax.Pos, format string, args ...any) error {
	return &ipvsadm.ParseError{Pos: s.pos(p), Msg: fmt.Sprintf(format, args...)}
}

// text is the source of a node, first line only, for notes.
func (s *shellRun) text(n syntax.Node) string {
	a, b := int(n.Pos().Offset()), int(n.End().Offset())
	if a < 0 || b > len(s.src) || a > b {
		return ""
	}
	t := string(s.src[a:b])
	if i := strings.IndexByte(t, '\n'); i >= 0 {
		t = strings.TrimRight(t[:i], " \\") + " ..."
	}
	return strings.TrimRight(strings.TrimSpace(t), ";&")
}

func (s *shellRun) note(n syntax.Node, reason string) {
	s.notes = append(s.notes, shNote{line: int(n.Pos().Line()), text: s.text(n), reason: reason})
}

// runShell reads a script and returns the table its start path programs.
func runShell(r io.Reader, name string, services ipvsadm.Services) (*ipvsadm.Rules, []shNote, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(bytes.NewReader(src), name)
	if err != nil {
		var pe syntax.ParseError
		if errors.As(err, &pe) {
			return nil, nil, &ipvsadm.ParseError{Pos: ipvsadm.Pos{File: name, Line: int(pe.Pos.Line()), Column: int(pe.Pos.Col())},
				Msg: "shell syntax: " + pe.Text}
		}
		return nil, nil, fmt.Errorf("parse %s: %w", name, err)
	}
	s := &shellRun{file: name, src: src, rules: ipvsadm.NewRules(services),
		vars: map[string]shVar{}, funcs: map[string]*syntax.Stmt{}, args: []shVar{{val: scriptArg}}}
	if err := s.stmts(f.Stmts); err != nil {
		return nil, nil, err
	}
	return s.rules, s.notes, nil
}

// env is the expansion environment: the script's variables and its
// positional parameters.
type env struct{ s *shellRun }

func (e env) Get(name string) expand.Variable {
	s := e.s
	switch name {
	case "@", "*":
		list := make([]string, len(s.args))
		for i, a := range s.args {
			list[i] = a.val
		}
		return expand.Variable{Set: true, Kind: expand.Indexed, List: list}
	case "#":
		return expand.Variable{Set: true, Kind: expand.String, Str: strconv.Itoa(len(s.args))}
	case "0":
		return expand.Variable{Set: true, Kind: expand.String, Str: s.file}
	}
	if n, err := strconv.Atoi(name); err == nil {
		if n >= 1 && n <= len(s.args) {
			return expand.Variable{Set: true, Kind: expand.String, Str: s.args[n-1].val}
		}
		return expand.Variable{}
	}
	v, ok := s.vars[name]
	if !ok {
		return expand.Variable{}
	}
	return expand.Variable{Set: true, Kind: expand.String, Str: v.val}
}

func (e env) Each(f func(name string, vr expand.Variable) bool) {
	for n := range e.s.vars {
		if !f(n, e.Get(n)) {
			return
		}
	}
}

func (s *shellRun) cfg() *expand.Config {
	return &expand.Config{Env: env{s}, CmdSubst: func(io.Writer, *syntax.CmdSubst) error { return errStatic }}
}

// staticErr tells why a word cannot be expanded statically, or returns nil.
func (s *shellRun) staticErr(w syntax.Node) error {
	var err error
	syntax.Walk(w, func(n syntax.Node) bool {
		if err != nil {
			return false
		}
		switch n := n.(type) {
		case *syntax.CmdSubst:
			err = s.errAt(n.Pos(), "the output of command %s %v", s.text(n), errStatic)
		case *syntax.ProcSubst:
			err = s.errAt(n.Pos(), "process substitution %s %v", s.text(n), errStatic)
		case *syntax.ParamExp:
			err = s.paramErr(n)
		}
		return true
	})
	return err
}

func (s *shellRun) paramErr(pe *syntax.ParamExp) error {
	if pe.Param == nil {
		return s.errAt(pe.Pos(), "unsupported parameter expansion")
	}
	name := pe.Param.Value
	switch name {
	case "#", "0", "LINENO":
		return nil
	case "@", "*":
		for _, a := range s.args {
			if a.unknown != "" {
				return s.errAt(pe.Pos(), "$%s %v: %s", name, errStatic, a.unknown)
			}
		}
		return nil
	case "?", "$", "!", "-", "RANDOM", "PPID", "HOSTNAME", "SECONDS":
		return s.errAt(pe.Pos(), "$%s %v", name, errStatic)
	}
	if n, err := strconv.Atoi(name); err == nil {
		// Positional parameters are known: the script runs with "start",
		// functions with the arguments of their call.
		if n >= 1 && n <= len(s.args) && s.args[n-1].unknown != "" {
			return s.errAt(pe.Pos(), "$%s %v: %s", name, errStatic, s.args[n-1].unknown)
		}
		return nil
	}
	v, ok := s.vars[name]
	if ok && v.unknown != "" {
		return &unknownVarError{s.errAt(pe.Pos(), "$%s %v: %s", name, errStatic, v.unknown), v.unknown}
	}
	switch {
	case ok:
	case len(s.sourced) > 0:
		return s.errAt(pe.Pos(), "$%s is not set by the script itself: it may come from %s, which the import does not read; set it in a copy of the script",
			name, strings.Join(s.sourced, ", "))
	case !hasDefault(pe):
		return s.errAt(pe.Pos(), "$%s is not set by the script (it would come from the environment); set it in a copy of the script", name)
	}
	return nil
}

// hasDefault reports ${X:-word}, ${X-word}, ${X:=word}, ${X=word}, which
// stay known when X is unset.
func hasDefault(pe *syntax.ParamExp) bool {
	if pe.Exp == nil {
		return false
	}
	switch pe.Exp.Op {
	case syntax.DefaultUnset, syntax.DefaultUnsetOrNull, syntax.AssignUnset, syntax.AssignUnsetOrNull:
		return true
	}
	return false
}

// fields expands words into fields for a command, or fails on what cannot
// be known.
func (s *shellRun) fields(words []*syntax.Word) ([]ipvsadm.Word, error) {
	var out []ipvsadm.Word
	for _, w := range words {
		if err := s.staticErr(w); err != nil {
			return nil, err
		}
		fs, err := expand.Fields(s.cfg(), w)
		if err != nil {
			return nil, s.errAt(w.Pos(), "expand %s: %v", s.text(w), err)
		}
		lit := w.Lit()
		for _, f := range fs {
			out = append(out, ipvsadm.Word{Text: f, Pos: s.pos(w.Pos()), Verbatim: lit != "" && lit == f})
		}
	}
	return out, nil
}

// literal expands one word to a string, or returns why it cannot.
func (s *shellRun) literal(w *syntax.Word) (string, error) {
	if err := s.staticErr(w); err != nil {
		return "", err
	}
	v, err := expand.Literal(s.cfg(), w)
	if err != nil {
		return "", s.errAt(w.Pos(), "expand %s: %v", s.text(w), err)
	}
	return v, nil
}

func (s *shellRun) step(n syntax.Node) error {
	s.steps++
	if s.steps > maxShellSteps {
		return s.errAt(n.Pos(), "the script runs more than %d statements (an endless loop?)", maxShellSteps)
	}
	return nil
}

func (s *shellRun) stmts(list []*syntax.Stmt) error {
	for _, st := range list {
		if s.exited || s.ret {
			return nil
		}
		if err := s.stmt(st); err != nil {
			return err
		}
	}
	return nil
}

func (s *shellRun) stmt(st *syntax.Stmt) error {
	if err := s.step(st); err != nil {
		return err
	}
	switch c := st.Cmd.(type) {
	case nil:
		return nil
	case *syntax.CallExpr:
		if len(c.Args) == 0 {
			for _, a := range c.Assigns {
				s.assign(a)
			}
			return nil
		}
		return s.call(st, c)
	case *syntax.DeclClause:
		return s.decl(st, c)
	case *syntax.BinaryCmd:
		return s.binary(st, c)
	case *syntax.IfClause:
		return s.ifClause(c)
	case *syntax.CaseClause:
		return s.caseClause(c)
	case *syntax.ForClause:
		return s.forClause(st, c)
	case *syntax.WhileClause:
		return s.unknownFlow(st, st, "a while/until loop")
	case *syntax.Block:
		return s.stmts(c.Stmts)
	case *syntax.Subshell:
		return s.subshell(c.Stmts)
	case *syntax.FuncDecl:
		s.funcs[c.Name.Value] = c.Body
		return nil
	case *syntax.TestClause, *syntax.ArithmCmd, *syntax.LetClause:
		return nil // a condition on its own changes nothing
	case *syntax.TimeClause:
		if c.Stmt != nil {
			return s.stmt(c.Stmt)
		}
		return nil
	}
	return s.unknownFlow(st, st, "this shell construct")
}

// subshell runs statements whose variables and exit stay inside.
func (s *shellRun) subshell(list []*syntax.Stmt) error {
	saved := make(map[string]shVar, len(s.vars))
	for k, v := range s.vars {
		saved[k] = v
	}
	err := s.stmts(list)
	s.vars, s.exited = saved, false
	return err
}

// assign runs NAME=value. A value that cannot be known makes the variable
// unknown: an error only where it is used for the table.
func (s *shellRun) assign(a *syntax.Assign) {
	if a.Name == nil {
		return
	}
	name := a.Name.Value
	if a.Array != nil || a.Index != nil {
		s.vars[name] = shVar{unknown: fmt.Sprintf("arrays are not imported (line %d)", a.Pos().Line())}
		return
	}
	val := ""
	if a.Value != nil {
		v, err := s.literal(a.Value)
		var uv *unknownVarError
		switch {
		case errors.As(err, &uv):
			s.vars[name] = shVar{unknown: uv.root}
			return
		case err != nil:
			s.vars[name] = shVar{unknown: fmt.Sprintf("assigned at line %d from %s", a.Pos().Line(), describe(err))}
			return
		}
		val = v
	}
	if a.Append {
		old := s.vars[name]
		if old.unknown != "" {
			return
		}
		val = old.val + val
	}
	if len(val) > maxVarLen {
		s.vars[name] = shVar{unknown: fmt.Sprintf("its value at line %d is longer than %d bytes", a.Pos().Line(), maxVarLen)}
		return
	}
	s.vars[name] = shVar{val: val}
}

// describe shortens a static error for use inside another message.
func describe(err error) string {
	var pe *ipvsadm.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s (column %d)", pe.Msg, pe.Pos.Column)
	}
	return err.Error()
}

func (s *shellRun) decl(st *syntax.Stmt, c *syntax.DeclClause) error {
	switch c.Variant.Value {
	case "export", "local", "readonly", "declare", "typeset":
		for _, a := range c.Args {
			if a.Naked {
				continue
			}
			s.assign(a)
		}
		return nil
	}
	s.note(st, "not an ipvsadm command")
	return nil
}

// commandName finds the command of a call: it expands words until the
// first one that is not sudo, command, exec, env, nice, nohup or time (or
// their options). It returns the fields from the command name on, the
// index of the first argument word not expanded yet, and whether exec
// runs it.
func (s *shellRun) commandName(c *syntax.CallExpr) (fs []ipvsadm.Word, next int, exec bool, err error) {
	wrapper, skipArg := "", false
	for {
		for len(fs) > 0 {
			w := fs[0].Text
			switch base := path.Base(w); {
			case skipArg:
				skipArg = false
			case base == "sudo" || base == "command" || base == "nohup" || base == "nice" || base == "env" || base == "time" || base == "exec":
				wrapper = base
				exec = exec || base == "exec"
			case wrapper != "" && w == "--":
				wrapper = "-" // options end
			case wrapper != "" && wrapper != "-" && strings.HasPrefix(w, "-"):
				// sudo -u USER, nice -n N, ...: options that take a value.
				skipArg = len(w) == 2 && (wrapper == "sudo" && strings.Contains("ugCDprtUTh", w[1:]) || wrapper == "nice" && w == "-n")
			case wrapper == "env" && strings.Contains(w, "="):
			default:
				return fs, next, exec, nil
			}
			fs = fs[1:]
		}
		if next >= len(c.Args) {
			return nil, next, exec, nil
		}
		more, err := s.fields(c.Args[next : next+1])
		if err != nil {
			return nil, 0, false, s.errAt(c.Args[next].Pos(), "cannot tell which command this runs: %s", describe(err))
		}
		fs = append(fs, more...)
		next++
	}
}

func (s *shellRun) call(st *syntax.Stmt, c *syntax.CallExpr) error {
	fs, next, isExec, err := s.commandName(c)
	if err != nil {
		return err
	}
	if isExec {
		defer func() { s.exited = true }()
	}
	if len(fs) == 0 {
		return nil
	}
	name, base := fs[0].Text, path.Base(fs[0].Text)
	switch {
	case base == "ipvsadm":
		return s.ipvsadm(st, c, fs[1:], next)
	case strings.HasPrefix(name, "-"):
		// A bare saved rule (ipvsadm-save output): the name is the first option.
		return s.ipvsadm(st, c, fs, next)
	case base == "ipvsadm-restore":
		return s.restore(st, c)
	case base == "ipvsadm-save":
		s.note(st, "ipvsadm-save does not change the table")
		return nil
	}
	if body, ok := s.funcs[name]; ok {
		return s.callFunc(st, c, body, fs[1:], next)
	}
	switch name {
	case "exit":
		s.exited = true
		s.note(st, "the script stops here")
		return nil
	case "return":
		s.ret = true
		return nil
	case ".", "source":
		file := "?"
		if next < len(c.Args) {
			file = s.text(c.Args[next])
		}
		s.sourced = append(s.sourced, fmt.Sprintf("%s (line %d)", file, st.Pos().Line()))
		s.note(st, "sourced file not read: the import cannot see the variables it sets")
		return nil
	case "shift":
		if len(s.args) > 0 {
			s.args = s.args[1:]
		}
		return nil
	case "set":
		if len(fs) == 1 && next < len(c.Args) && c.Args[next].Lit() == "--" {
			s.args = s.callArgs(nil, c.Args[next+1:])
		}
		return nil
	case "unset":
		for _, a := range c.Args[next:] {
			delete(s.vars, a.Lit())
		}
		return nil
	case "true", ":", "false", "[", "test", "[[":
		return nil
	}
	s.note(st, "not an ipvsadm command")
	return nil
}

func (s *shellRun) callFunc(st *syntax.Stmt, c *syntax.CallExpr, body *syntax.Stmt, pre []ipvsadm.Word, next int) error {
	if s.depth >= maxCallDepth {
		return s.errAt(st.Pos(), "functions nest deeper than %d calls", maxCallDepth)
	}
	saved := s.args
	s.args = s.callArgs(pre, c.Args[next:])
	s.depth++
	err := s.stmt(body)
	s.depth--
	s.args, s.ret = saved, false
	return err
}

// callArgs expands the arguments of a function call. An argument that
// cannot be known is an error only where the function uses it.
func (s *shellRun) callArgs(pre []ipvsadm.Word, words []*syntax.Word) []shVar {
	var args []shVar
	for _, f := range pre {
		args = append(args, shVar{val: f.Text})
	}
	for _, w := range words {
		fs, err := s.fields([]*syntax.Word{w})
		if err != nil {
			args = append(args, shVar{unknown: fmt.Sprintf("argument %s at line %d: %s", s.text(w), w.Pos().Line(), describe(err))})
			continue
		}
		for _, f := range fs {
			args = append(args, shVar{val: f.Text})
		}
	}
	return args
}

// ipvsadm applies one ipvsadm command.
func (s *shellRun) ipvsadm(st *syntax.Stmt, c *syntax.CallExpr, words []ipvsadm.Word, next int) error {
	rest, err := s.fields(c.Args[next:])
	if err != nil {
		return err
	}
	words = append(append([]ipvsadm.Word(nil), words...), rest...)
	for _, w := range words {
		if w.Text == "-R" || w.Text == "--restore" {
			return s.restore(st, c)
		}
	}
	note, err := s.rules.Command(words)
	if err != nil {
		return err
	}
	if note != "" {
		s.note(st, note)
	}
	return nil
}

// restore applies "ipvsadm -R" / ipvsadm-restore fed by a here-document.
func (s *shellRun) restore(st *syntax.Stmt, c *syntax.CallExpr) error {
	for _, r := range st.Redirs {
		switch r.Op {
		case syntax.Hdoc, syntax.DashHdoc:
			if r.Hdoc == nil {
				return nil
			}
			if err := s.staticErr(r.Hdoc); err != nil {
				return err
			}
			doc, err := expand.Document(s.cfg(), r.Hdoc)
			if err != nil {
				return s.errAt(r.Hdoc.Pos(), "expand here-document: %v", err)
			}
			verbatim := r.Hdoc.Lit() == doc
			line := int(r.Hdoc.Pos().Line())
			for i, l := range strings.Split(doc, "\n") {
				if r.Op == syntax.DashHdoc {
					l = strings.TrimLeft(l, "\t")
				}
				if err := s.savedRule(line+i, l, verbatim); err != nil {
					return err
				}
			}
			return nil
		case syntax.RdrIn:
			return s.errAt(r.Word.Pos(), "ipvsadm -R reads its rules from %s, which is not part of this script: import that file instead", s.text(r.Word))
		}
	}
	return s.errAt(c.Pos(), "ipvsadm -R reads its rules from standard input, which %v", errStatic)
}

func (s *shellRun) savedRule(line int, text string, verbatim bool) error {
	words := strings.Fields(text)
	if len(words) == 0 || strings.HasPrefix(words[0], "#") {
		return nil
	}
	var ws []ipvsadm.Word
	col := 0
	for _, w := range words {
		i := strings.Index(text[col:], w) + col
		p := ipvsadm.Pos{File: s.file, Line: line, Column: i + 1}
		if !verbatim {
			p.Column = 1
		}
		ws = append(ws, ipvsadm.Word{Text: w, Pos: p, Verbatim: verbatim})
		col = i + len(w)
	}
	note, err := s.rules.Command(ws)
	if err != nil {
		return err
	}
	if note != "" {
		s.notes = append(s.notes, shNote{line: line, text: strings.TrimSpace(text), reason: note})
	}
	return nil
}

// tri is a condition's value: true, false or not known statically.
type tri struct {
	known bool
	val   bool
	why   string // when not known, or what a known value assumes
	ran   bool   // a command that ran, assumed to succeed
}

func known(b bool) tri { return tri{known: true, val: b} }

func unknownCond(why string) tri { return tri{why: why} }

func (t tri) not() tri {
	if t.known {
		t.val = !t.val
	}
	return t
}

// cond evaluates the exit status of a condition list: its last statement.
// Commands in the list before the last one run as statements.
func (s *shellRun) cond(list []*syntax.Stmt, assume bool) (tri, error) {
	if len(list) == 0 {
		return known(true), nil
	}
	if err := s.stmts(list[:len(list)-1]); err != nil {
		return tri{}, err
	}
	return s.condStmt(list[len(list)-1], assume)
}

// condStmt evaluates one statement as a condition. With assume, a command
// is run and assumed to succeed ("modprobe ip_vs && ipvsadm ..."); without,
// only a command that changes the table is.
func (s *shellRun) condStmt(st *syntax.Stmt, assume bool) (tri, error) {
	t, err := s.condCmd(st, st.Cmd, assume)
	if st.Negated {
		t = t.not()
	}
	return t, err
}

func (s *shellRun) condCmd(st *syntax.Stmt, cmd syntax.Command, assume bool) (tri, error) {
	switch c := cmd.(type) {
	case *syntax.CallExpr:
		if len(c.Args) == 0 {
			for _, a := range c.Assigns {
				s.assign(a)
			}
			return known(true), nil
		}
		fs, next, _, err := s.commandName(c)
		if err != nil {
			return unknownCond(describe(err)), nil
		}
		name := ""
		if len(fs) > 0 {
			name = fs[0].Text
		}
		switch name {
		case "true", ":":
			return known(true), nil
		case "false":
			return known(false), nil
		case "[", "test":
			args := append([]ipvsadm.Word(nil), fs[1:]...)
			more, err := s.fields(c.Args[next:])
			if err != nil {
				return unknownCond(describe(err)), nil
			}
			args = append(args, more...)
			if name == "[" {
				if len(args) == 0 || args[len(args)-1].Text != "]" {
					return tri{}, s.errAt(c.Pos(), "'[' without a closing ']'")
				}
				args = args[:len(args)-1]
			}
			vals := make([]string, len(args))
			for i, a := range args {
				vals[i] = a.Text
			}
			return testArgs(vals), nil
		}
		if !assume && !s.effects([]*syntax.Stmt{st}) {
			return unknownCond("the exit status of " + s.text(st)), nil
		}
		// The command runs; its status is assumed to be success.
		return tri{known: true, val: true, ran: true}, s.stmt(st)
	case *syntax.TestClause:
		return s.testExpr(c.X), nil
	case *syntax.BinaryCmd:
		x, err := s.condStmt(c.X, assume)
		if err != nil {
			return tri{}, err
		}
		switch c.Op {
		case syntax.AndStmt:
			if x.known && !x.val {
				return x, nil
			}
			y, err := s.condStmt(c.Y, assume)
			if err != nil || !x.known {
				if y.known && !y.val {
					return y, err
				}
				return x, err
			}
			return y, err
		case syntax.OrStmt:
			if x.known && x.val {
				return x, nil
			}
			y, err := s.condStmt(c.Y, assume)
			if err != nil || !x.known {
				if y.known && y.val {
					return y, err
				}
				return x, err
			}
			return y, err
		}
		return unknownCond("the exit status of a pipeline"), nil
	case *syntax.Block:
		return s.cond(c.Stmts, assume)
	case *syntax.Subshell:
		return s.cond(c.Stmts, assume)
	}
	return unknownCond("the exit status of " + s.text(st)), nil
}

// testArgs evaluates the arguments of test / [ ].
func testArgs(a []string) tri {
	switch len(a) {
	case 0:
		return known(false)
	case 1:
		return known(a[0] != "")
	case 2:
		switch a[0] {
		case "!":
			return testArgs(a[1:]).not()
		case "-z":
			return known(a[1] == "")
		case "-n":
			return known(a[1] != "")
		}
		if len(a[0]) == 2 && a[0][0] == '-' && path.Base(a[1]) == "ipvsadm" {
			// The script runs ipvsadm: it is installed on the director.
			t := known(a[0] != "-z" && a[0] != "-L" && a[0] != "-h")
			t.why = "the script runs ipvsadm, so it is installed"
			return t
		}
		if len(a[0]) == 2 && a[0][0] == '-' {
			return unknownCond(fmt.Sprintf("test %s %s depends on the director's files or terminal", a[0], a[1]))
		}
	case 3:
		if a[0] == "!" {
			return testArgs(a[1:]).not()
		}
		if t, ok := compare(a[0], a[1], a[2]); ok {
			return t
		}
	}
	for i, w := range a {
		if w == "-a" || w == "-o" {
			x, y := testArgs(a[:i]), testArgs(a[i+1:])
			if w == "-a" {
				return and(x, y)
			}
			return or(x, y)
		}
	}
	return unknownCond("test " + strings.Join(a, " "))
}

func and(x, y tri) tri {
	switch {
	case x.known && y.known:
		return known(x.val && y.val)
	case x.known && !x.val, y.known && !y.val:
		return known(false)
	case !x.known:
		return x
	}
	return y
}

func or(x, y tri) tri {
	switch {
	case x.known && y.known:
		return known(x.val || y.val)
	case x.known && x.val, y.known && y.val:
		return known(true)
	case !x.known:
		return x
	}
	return y
}

func compare(x, op, y string) (tri, bool) {
	switch op {
	case "=", "==":
		return known(x == y), true
	case "!=":
		return known(x != y), true
	case "-eq", "-ne", "-lt", "-le", "-gt", "-ge":
		a, err1 := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		b, err2 := strconv.ParseInt(strings.TrimSpace(y), 10, 64)
		if err1 != nil || err2 != nil {
			return unknownCond(fmt.Sprintf("test %s %s %s compares words that are not integers", x, op, y)), true
		}
		r := map[string]bool{"-eq": a == b, "-ne": a != b, "-lt": a < b, "-le": a <= b, "-gt": a > b, "-ge": a >= b}[op]
		return known(r), true
	}
	return tri{}, false
}

// testExpr evaluates [[ ... ]].
func (s *shellRun) testExpr(x syntax.TestExpr) tri {
	switch e := x.(type) {
	case *syntax.Word:
		v, err := s.literal(e)
		if err != nil {
			return unknownCond(describe(err))
		}
		return known(v != "")
	case *syntax.ParenTest:
		return s.testExpr(e.X)
	case *syntax.UnaryTest:
		if e.Op == syntax.TsNot {
			return s.testExpr(e.X).not()
		}
		w, ok := e.X.(*syntax.Word)
		if !ok {
			return unknownCond("[[ " + e.Op.String() + " ... ]]")
		}
		v, err := s.literal(w)
		if err != nil {
			return unknownCond(describe(err))
		}
		return testArgs([]string{e.Op.String(), v})
	case *syntax.BinaryTest:
		switch e.Op {
		case syntax.AndTest:
			return and(s.testExpr(e.X), s.testExpr(e.Y))
		case syntax.OrTest:
			return or(s.testExpr(e.X), s.testExpr(e.Y))
		}
		xw, ok1 := e.X.(*syntax.Word)
		yw, ok2 := e.Y.(*syntax.Word)
		if !ok1 || !ok2 {
			return unknownCond("[[ ... ]]")
		}
		a, err := s.literal(xw)
		if err != nil {
			return unknownCond(describe(err))
		}
		switch e.Op {
		case syntax.TsMatch, syntax.TsMatchShort, syntax.TsNoMatch:
			ok, err := s.match(yw, a)
			if err != nil {
				return unknownCond(describe(err))
			}
			return known(ok == (e.Op != syntax.TsNoMatch))
		}
		b, err := s.literal(yw)
		if err != nil {
			return unknownCond(describe(err))
		}
		if t, ok := compare(a, e.Op.String(), b); ok {
			return t
		}
		return unknownCond("[[ " + a + " " + e.Op.String() + " " + b + " ]]")
	}
	return unknownCond("[[ ... ]]")
}

// match reports whether value matches a shell pattern word.
func (s *shellRun) match(pat *syntax.Word, value string) (bool, error) {
	if err := s.staticErr(pat); err != nil {
		return false, err
	}
	p, err := expand.Pattern(s.cfg(), pat)
	if err != nil {
		return false, s.errAt(pat.Pos(), "pattern %s: %v", s.text(pat), err)
	}
	re, err := pattern.Regexp(p, pattern.EntireString)
	if err != nil {
		return false, s.errAt(pat.Pos(), "pattern %s: %v", s.text(pat), err)
	}
	return regexp.MustCompile(re).MatchString(value), nil
}

func (s *shellRun) binary(st *syntax.Stmt, c *syntax.BinaryCmd) error {
	switch c.Op {
	case syntax.AndStmt, syntax.OrStmt:
		x, err := s.condStmt(c.X, true)
		if err != nil {
			return err
		}
		runY := c.Op == syntax.AndStmt
		if !x.known {
			// "[ -f /etc/lvs.conf ] && . /etc/lvs.conf", "[ -d /x ] || exit 1"
			return s.unknownFlow(st, c.Y, x.why)
		}
		if x.val == runY {
			return s.stmt(c.Y)
		}
		if s.effects([]*syntax.Stmt{c.Y}) || exits([]*syntax.Stmt{c.Y}) {
			why := fmt.Sprintf("%s is %v when the script runs with %q", s.text(c.X), x.val, scriptArg)
			if x.why != "" {
				why = fmt.Sprintf("%s is taken as %v (%s)", s.text(c.X), x.val, x.why)
			}
			if x.ran {
				why = s.text(c.X) + " is assumed to succeed"
			}
			s.note(c.Y, "not run: "+why)
		}
		return nil
	}
	// A pipeline: every part runs.
	if err := s.stmt(c.X); err != nil {
		return err
	}
	return s.stmt(c.Y)
}

// unknownFlow handles code that runs or not depending on what cannot be
// known statically: an error when it would change the table, a note when
// it only stops the script (assumed not to: the operator imports the
// path that programs the table), variables it sets become unknown.
func (s *shellRun) unknownFlow(at syntax.Node, body syntax.Node, why string) error {
	list := []*syntax.Stmt{}
	if st, ok := body.(*syntax.Stmt); ok {
		list = append(list, st)
	}
	if s.effectsNode(body) {
		return s.errAt(at.Pos(), "cannot know whether %s changes the table: it depends on %s", shorten(s.text(at), 60), why)
	}
	syntax.Walk(body, func(n syntax.Node) bool {
		if c, ok := n.(*syntax.CallExpr); ok && len(c.Args) > 1 && (c.Args[0].Lit() == "." || c.Args[0].Lit() == "source") {
			s.sourced = append(s.sourced, fmt.Sprintf("%s (line %d)", s.text(c.Args[1]), c.Pos().Line()))
		}
		return true
	})
	for _, n := range assignedIn(body) {
		s.vars[n] = shVar{unknown: fmt.Sprintf("set at line %d only if %s", at.Pos().Line(), why)}
	}
	reason := fmt.Sprintf("skipped: depends on %s; no ipvsadm command in it", why)
	if exits(list) || exitsNode(body) {
		reason = fmt.Sprintf("assumed not to stop the script (it depends on %s)", why)
	}
	s.note(at, reason)
	return nil
}

func shorten(t string, n int) string {
	if len(t) > n {
		return t[:n-3] + "..."
	}
	return t
}

func (s *shellRun) ifClause(c *syntax.IfClause) error {
	for cl := c; cl != nil; cl = cl.Else {
		if !cl.ThenPos.IsValid() {
			return s.stmts(cl.Then) // else
		}
		t, err := s.cond(cl.Cond, false)
		if err != nil {
			return err
		}
		if !t.known {
			return s.unknownFlow(cl, cl, t.why)
		}
		if t.val {
			return s.stmts(cl.Then)
		}
	}
	return nil
}

func (s *shellRun) caseClause(c *syntax.CaseClause) error {
	v, err := s.literal(c.Word)
	if err != nil {
		if s.effectsNode(c) {
			return s.errAt(c.Word.Pos(), "cannot know which branch of this case runs: %s", describe(err))
		}
		s.note(c, "skipped: "+describe(err)+"; no ipvsadm command in it")
		return nil
	}
	ran := map[int]bool{}
	for i := 0; i < len(c.Items); i++ {
		it := c.Items[i]
		hit := false
		for _, p := range it.Patterns {
			ok, err := s.match(p, v)
			if err != nil {
				return err
			}
			if ok {
				hit = true
				break
			}
		}
		if !hit {
			continue
		}
		// ;; stops, ;& runs the next branch too, ;;& tests the next patterns.
		for ; i < len(c.Items); i++ {
			ran[i] = true
			if err := s.stmts(c.Items[i].Stmts); err != nil {
				return err
			}
			if c.Items[i].Op != syntax.Fallthrough || s.exited || s.ret {
				break
			}
		}
		if i >= len(c.Items) || c.Items[i].Op != syntax.Resume || s.exited || s.ret {
			break
		}
	}
	for i, it := range c.Items {
		if !ran[i] && (s.effects(it.Stmts) || exits(it.Stmts)) {
			s.notes = append(s.notes, shNote{line: int(it.Pos().Line()), text: s.caseItemText(it),
				reason: fmt.Sprintf("branch not taken: the script is imported as run with %q", v)})
		}
	}
	return nil
}

func (s *shellRun) caseItemText(it *syntax.CaseItem) string {
	var ps []string
	for _, p := range it.Patterns {
		ps = append(ps, s.text(p))
	}
	return strings.Join(ps, "|") + ")"
}

func (s *shellRun) forClause(st *syntax.Stmt, c *syntax.ForClause) error {
	wi, ok := c.Loop.(*syntax.WordIter)
	if !ok {
		return s.unknownFlow(st, st, "an arithmetic for loop")
	}
	var items []string
	if !wi.InPos.IsValid() {
		for _, a := range s.args {
			if a.unknown != "" {
				return s.errAt(wi.Pos(), "the loop runs over \"$@\", which %v: %s", errStatic, a.unknown)
			}
			items = append(items, a.val)
		}
	} else {
		fs, err := s.fields(wi.Items)
		if err != nil {
			if s.effects(c.Do) {
				return err
			}
			return s.unknownFlow(st, st, describe(err))
		}
		for _, f := range fs {
			items = append(items, f.Text)
		}
	}
	for _, it := range items {
		s.vars[wi.Name.Value] = shVar{val: it}
		if err := s.stmts(c.Do); err != nil {
			return err
		}
		if s.exited || s.ret {
			break
		}
	}
	return nil
}

// effects reports whether statements may change the table: an ipvsadm
// call (also through a variable or a function), or a command whose name
// cannot be known.
func (s *shellRun) effects(list []*syntax.Stmt) bool {
	for _, st := range list {
		if s.effectsNode(st) {
			return true
		}
	}
	return false
}

func (s *shellRun) effectsNode(n syntax.Node) bool {
	return s.effectsSeen(n, map[string]bool{})
}

func (s *shellRun) effectsSeen(n syntax.Node, seen map[string]bool) bool {
	found := false
	syntax.Walk(n, func(n syntax.Node) bool {
		if found {
			return false
		}
		if _, ok := n.(*syntax.CmdSubst); ok {
			return false // its output is what matters, and that is an error where used
		}
		c, ok := n.(*syntax.CallExpr)
		if !ok || len(c.Args) == 0 {
			return true
		}
		fs, next, _, err := s.commandName(c)
		if err != nil {
			found = true // a command we cannot name
			return false
		}
		if len(fs) == 0 {
			return true
		}
		name := fs[0].Text
		switch base := path.Base(name); {
		case base == "ipvsadm":
			first := ""
			if len(fs) > 1 {
				first = fs[1].Text
			} else if next < len(c.Args) {
				first, _ = s.literal(c.Args[next])
			}
			found = !listsOnly(first)
		case base == "ipvsadm-restore" || strings.HasPrefix(name, "-"):
			found = true
		case s.funcs[name] != nil && !seen[name]:
			seen[name] = true
			found = s.effectsSeen(s.funcs[name], seen)
		}
		return !found
	})
	return found
}

// listsOnly reports an ipvsadm invocation whose first argument only reads
// the table (listing, saving, help, version) or that has no arguments.
func listsOnly(first string) bool {
	if first == "" {
		return true
	}
	for _, p := range []string{"-L", "-l", "-S", "-h", "-v", "--list", "--save", "--help", "--version"} {
		if strings.HasPrefix(first, p) {
			return true
		}
	}
	return false
}

// exits reports whether statements contain exit.
func exits(list []*syntax.Stmt) bool {
	for _, st := range list {
		if exitsNode(st) {
			return true
		}
	}
	return false
}

func exitsNode(n syntax.Node) bool {
	found := false
	syntax.Walk(n, func(n syntax.Node) bool {
		if c, ok := n.(*syntax.CallExpr); ok && len(c.Args) > 0 && c.Args[0].Lit() == "exit" {
			found = true
		}
		return !found
	})
	return found
}

// assignedIn lists the variables a subtree assigns.
func assignedIn(n syntax.Node) []string {
	var names []string
	syntax.Walk(n, func(n syntax.Node) bool {
		if a, ok := n.(*syntax.Assign); ok && a.Name != nil {
			names = append(names, a.Name.Value)
		}
		if f, ok := n.(*syntax.ForClause); ok {
			if wi, ok := f.Loop.(*syntax.WordIter); ok {
				names = append(names, wi.Name.Value)
			}
		}
		return true
	})
	return names
}
