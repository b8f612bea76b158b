package importer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reads keepalived.conf the way keepalived 2.2's parser does
// (lib/parser.c: read_line, decomment, check_definition, replace_param,
// check_include) and builds the statement tree. Every word keeps the file,
// line and column it was written at, also when it came from a $MACRO.

// KeepalivedError is a problem in a keepalived.conf.
type KeepalivedError struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *KeepalivedError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// kaPos is where a word was written.
type kaPos struct {
	file      string
	line, col int
}

func (p kaPos) errorf(format string, args ...any) error {
	return &KeepalivedError{p.file, p.line, p.col, fmt.Sprintf(format, args...)}
}

// kaWord is one word of a statement.
type kaWord struct {
	s   string
	pos kaPos
}

// kaNode is one keepalived.conf statement: its words and, for blocks, the
// statements inside the braces.
type kaNode struct {
	words    []kaWord
	block    bool
	children []*kaNode
	// cond is the "@ID" / "@^ID" prefix of a line kept because no config
	// id was given.
	cond string
}

func (n *kaNode) keyword() string { return n.words[0].s }
func (n *kaNode) pos() kaPos      { return n.words[0].pos }
func (n *kaNode) line() int       { return n.words[0].pos.line }

// arg returns word i (1 = the first argument) or "".
func (n *kaNode) arg(i int) string {
	if i < len(n.words) {
		return n.words[i].s
	}
	return ""
}

// at returns the position of word i, or of the keyword when it is missing.
func (n *kaNode) at(i int) kaPos {
	if i < len(n.words) {
		return n.words[i].pos
	}
	return n.words[0].pos
}

func (n *kaNode) args() []string {
	var out []string
	for _, w := range n.words[1:] {
		out = append(out, w.s)
	}
	return out
}

// text renders a statement and its block on one line, for comments.
func (n *kaNode) text() string {
	var ws []string
	for _, w := range n.words {
		ws = append(ws, w.s)
	}
	s := strings.Join(ws, " ")
	if n.cond != "" {
		s = n.cond + " " + s
	}
	if !n.block {
		return s
	}
	var parts []string
	for _, c := range n.children {
		parts = append(parts, c.text())
	}
	if len(parts) == 0 {
		return s + " {}"
	}
	return s + " {" + strings.Join(parts, "; ") + "}"
}

// kaToken is a word or an unquoted brace.
type kaToken struct {
	s     string
	pos   kaPos
	brace bool
	cond  string
	stmt  int // statement number: tokens of one logical line share it
}

// kaDef is a $NAME=value definition.
type kaDef struct {
	lines []string // more than one for a multi-line definition
	pos   kaPos    // where it was defined
}

// kaReader holds the state of the preprocessor across included files.
type kaReader struct {
	opts    Options
	defs    map[string]*kaDef
	toks    []kaToken
	stmt    int
	depth   int
	notes   []string // lines dropped by @ID conditions, includes matching nothing
	pending *kaDef   // multi-line definition being read
}

// maxIncludeDepth bounds include nesting (keepalived has no bound, but a
// file including itself would never end).
const maxIncludeDepth = 16

// Bounds on macro expansion: rounds of replacement on one line and the
// length of the line they give.
const (
	maxMacroRounds = 32
	maxLineLen     = 64 << 10
)

func (o Options) fsys() fs.FS {
	if o.FS != nil {
		return o.FS
	}
	return os.DirFS("/")
}

// fsPath turns an absolute path into an fs.FS path.
func fsPath(p string) string {
	p = strings.TrimPrefix(path.Clean(p), "/")
	if p == "" {
		return "."
	}
	return p
}

// file reads one configuration file; abs is its absolute path, for
// relative includes.
func (k *kaReader) file(r io.Reader, name, abs string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		if err := k.line(sc.Text(), kaPos{name, lineNo, 1}, abs); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	k.pending = nil
	return nil
}

// mapped is a line being preprocessed, with the source column of each
// byte (macro text gets the column of the $ that brought it in).
type mapped struct {
	s    string
	cols []int
}

func newMapped(s string, col int) mapped {
	m := mapped{s: s, cols: make([]int, len(s))}
	for i := range m.cols {
		m.cols[i] = col + i
	}
	return m
}

func (m mapped) col(i int) int {
	switch {
	case len(m.cols) == 0:
		return 1
	case i >= len(m.cols):
		return m.cols[len(m.cols)-1] + 1
	}
	return m.cols[i]
}

func (m mapped) slice(a, b int) mapped { return mapped{m.s[a:b], m.cols[a:b]} }

func (m mapped) trimLeft(cut string) mapped {
	i := 0
	for i < len(m.s) && strings.IndexByte(cut, m.s[i]) >= 0 {
		i++
	}
	return m.slice(i, len(m.s))
}

func (m mapped) trimRight(cut string) mapped {
	j := len(m.s)
	for j > 0 && strings.IndexByte(cut, m.s[j-1]) >= 0 {
		j--
	}
	return m.slice(0, j)
}

// checkBlanks rejects Unicode blanks outside quotes: keepalived splits on
// space and tab only, so a no-break space pasted from a web page becomes
// part of a word, and the line is dropped as an unknown keyword.
func checkBlanks(s string, p kaPos) error {
	quote := false
	for i, r := range s {
		if r == '"' {
			quote = !quote
		}
		if quote || r < utf8.RuneSelf || !(unicode.IsSpace(r) || r == '\u200b' || r == '\ufeff') {
			continue
		}
		if r == '\ufeff' && i == 0 && p.line == 1 {
			continue // a byte-order mark at the start of the file
		}
		where := "inside this line"
		if strings.TrimLeft(s[:i], " \t\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u202f\u205f\u3000\ufeff") == "" {
			where = "in the indentation"
		}
		p.col = i + 1
		return p.errorf("%s (U+%04X) %s: keepalived does not take it for a blank, reads it as part of a word and drops "+
			"the statement as an unknown keyword, so this line is not in what keepalived runs; replace it with a space",
			blankName(r), r, where)
	}
	return nil
}

func blankName(r rune) string {
	switch r {
	case '\u00a0':
		return "no-break space"
	case '\u200b':
		return "zero-width space"
	case '\ufeff':
		return "zero-width no-break space"
	case '\u3000':
		return "ideographic space"
	}
	return "Unicode blank"
}

// decomment removes a '!' or '#' comment outside double quotes, the
// backslash before an escaped '!' or '#', and surrounding blanks. It
// reports a trailing backslash (a continued definition).
func decomment(m mapped) (mapped, bool) {
	m = m.trimLeft(" \t")
	var b strings.Builder
	cols := make([]int, 0, len(m.cols))
	quote, cont := false, false
	for i := 0; i < len(m.s); i++ {
		c := m.s[i]
		switch {
		case c == '"':
			quote = !quote
		case c == '\\' && i+1 < len(m.s):
			if quote || (m.s[i+1] != '#' && m.s[i+1] != '!') {
				b.WriteString(m.s[i : i+2])
				cols = append(cols, m.cols[i], m.cols[i+1])
				i++
				continue
			}
			i++ // an escaped comment character: keep it, drop the backslash
		case c == '\\':
			cont = true
			i = len(m.s)
			continue
		case !quote && (c == '!' || c == '#'):
			i = len(m.s)
			continue
		}
		b.WriteByte(m.s[i])
		cols = append(cols, m.cols[i])
	}
	return mapped{b.String(), cols}.trimRight(" \t"), cont
}

// line preprocesses one physical line.
func (k *kaReader) line(raw string, p kaPos, abs string) error {
	raw = strings.TrimRight(raw, "\r")
	if err := checkBlanks(raw, p); err != nil {
		return err
	}
	m, cont := decomment(newMapped(raw, 1))
	if k.pending != nil {
		// A multi-line definition goes on while lines end with '\'.
		if m.s != "" {
			k.pending.lines = append(k.pending.lines, m.s)
		}
		if !cont {
			k.pending = nil
		}
		return nil
	}
	if m.s == "" {
		return nil
	}
	cond := ""
	for round, recheck := 0, true; recheck; round++ {
		recheck = false
		if round > maxMacroRounds || len(m.s) > maxLineLen {
			return kaPos{p.file, p.line, 1}.errorf("macro expansion does not end (a definition that uses itself?)")
		}
		if strings.HasPrefix(m.s, "@") {
			i := strings.IndexAny(m.s, " \t")
			if i < 0 {
				return nil // nothing after the id: keepalived drops the line
			}
			id, neg := m.s[1:i], false
			if strings.HasPrefix(id, "^") {
				id, neg = id[1:], true
			}
			rest := m.slice(i, len(m.s)).trimLeft(" \t")
			switch {
			case k.opts.ConfigID == "":
				cond = m.s[:i]
			case (id == k.opts.ConfigID) == neg:
				k.notes = append(k.notes, fmt.Sprintf("%s:%d: %s (for another config id than %q)", p.file, p.line, m.s, k.opts.ConfigID))
				return nil
			}
			m = rest
		}
		if name, val, ok := kaDefinition(m.s); ok {
			d := &kaDef{pos: kaPos{p.file, p.line, m.col(0)}}
			if cont {
				if strings.TrimSpace(val) != "" {
					d.lines = append(d.lines, val)
				}
				k.pending = d
			} else {
				d.lines = []string{val}
			}
			k.defs[name] = d
			return nil
		}
		if strings.HasPrefix(m.s, "~SEQ") || strings.HasPrefix(m.s, "~LST") {
			return kaPos{p.file, p.line, m.col(0)}.errorf("%s is not supported by the importer: expand the sequence by hand", m.s[:4])
		}
		if strings.Contains(m.s, "$") && len(k.defs) > 0 {
			lines, changed, err := k.replace(m, p)
			if err != nil {
				return err
			}
			if changed {
				if len(lines) > 1 {
					for _, l := range lines {
						if err := k.logical(l, p, abs, cond); err != nil {
							return err
						}
					}
					return nil
				}
				m, _ = decomment(lines[0])
				recheck = strings.HasPrefix(m.s, "@") || strings.Contains(m.s, "$")
			}
		}
	}
	return k.logical(m, p, abs, cond)
}

// kaDefinition recognises "$NAME=value".
func kaDefinition(s string) (name, val string, ok bool) {
	if len(s) < 3 || s[0] != '$' || !(isAlpha(s[1]) || s[1] == '_') {
		return "", "", false
	}
	i := 2
	for i < len(s) && (isAlnum(s[i]) || s[i] == '_') {
		i++
	}
	if i >= len(s) || s[i] != '=' {
		return "", "", false
	}
	return s[1:i], strings.TrimLeft(s[i+1:], " \t"), true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' }

// replace substitutes $NAME and ${NAME} of known definitions. A
// multi-line definition used alone on a line gives several lines.
func (k *kaReader) replace(m mapped, p kaPos) ([]mapped, bool, error) {
	var b strings.Builder
	var cols []int
	keep := func(i int) {
		b.WriteByte(m.s[i])
		cols = append(cols, m.cols[i])
	}
	changed := false
	for i := 0; i < len(m.s); i++ {
		if m.s[i] != '$' || i+1 >= len(m.s) {
			keep(i)
			continue
		}
		j, braces := i+1, false
		if m.s[j] == '{' {
			j, braces = j+1, true
		}
		start := j
		if j >= len(m.s) || !(isAlpha(m.s[j]) || m.s[j] == '_') {
			keep(i)
			continue
		}
		for j < len(m.s) && (isAlnum(m.s[j]) || m.s[j] == '_') {
			j++
		}
		name := m.s[start:j]
		end := j
		if braces {
			if j < len(m.s) && m.s[j] == ' ' {
				return nil, false, kaPos{p.file, p.line, m.col(i)}.errorf("parameterised definition ${%s ...} is not supported by the importer", name)
			}
			if j >= len(m.s) || m.s[j] != '}' {
				keep(i)
				continue
			}
			end = j + 1
		} else if j < len(m.s) && !strings.ContainsRune(" \t,)", rune(m.s[j])) {
			keep(i)
			continue
		}
		d, ok := k.defs[name]
		if !ok {
			keep(i)
			continue
		}
		changed = true
		if len(d.lines) != 1 {
			if strings.TrimSpace(m.s[:i]) != "" || strings.TrimSpace(m.s[end:]) != "" {
				return nil, false, kaPos{p.file, p.line, m.col(i)}.errorf("multi-line definition $%s (line %d) used inside a line", name, d.pos.line)
			}
			var lines []mapped
			for _, l := range d.lines {
				lines = append(lines, newMapped(l, m.col(i)).withCol(m.col(i)))
			}
			return lines, true, nil
		}
		v := d.lines[0]
		if b.Len()+len(v) > maxLineLen {
			return nil, false, kaPos{p.file, p.line, 1}.errorf("macro expansion does not end (a definition that uses itself?)")
		}
		b.WriteString(v)
		for range len(v) {
			cols = append(cols, m.cols[i])
		}
		i = end - 1
	}
	return []mapped{{b.String(), cols}}, changed, nil
}

// withCol gives every byte the same source column.
func (m mapped) withCol(col int) mapped {
	for i := range m.cols {
		m.cols[i] = col
	}
	return m
}

// logical handles a preprocessed line: include, or words and braces.
func (k *kaReader) logical(m mapped, p kaPos, abs, cond string) error {
	m = m.trimLeft(" \t")
	if m.s == "" {
		return nil
	}
	if kw, rest, _ := strings.Cut(m.s, " "); kw == "include" || strings.HasPrefix(m.s, "include\t") {
		if kw != "include" {
			_, rest, _ = strings.Cut(m.s, "\t")
		}
		if cond != "" {
			return kaPos{p.file, p.line, m.col(0)}.errorf("include under %s depends on keepalived's config id: give it (-i)", cond)
		}
		return k.include(strings.TrimSpace(rest), kaPos{p.file, p.line, m.col(0)}, abs)
	}
	k.stmt++
	i := 0
	for i < len(m.s) {
		c := m.s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '{' || c == '}':
			k.stmt++ // a brace ends the statement before it
			k.toks = append(k.toks, kaToken{s: string(c), pos: kaPos{p.file, p.line, m.col(i)}, brace: true, cond: cond, stmt: k.stmt})
			k.stmt++
			i++
		case c == '"':
			end := strings.IndexByte(m.s[i+1:], '"')
			if end < 0 {
				return kaPos{p.file, p.line, m.col(i)}.errorf("unterminated quoted string")
			}
			k.toks = append(k.toks, kaToken{s: m.s[i+1 : i+1+end], pos: kaPos{p.file, p.line, m.col(i)}, cond: cond, stmt: k.stmt})
			i += end + 2
		default:
			start := i
			for i < len(m.s) && !strings.ContainsRune(" \t{}\"", rune(m.s[i])) {
				i++
			}
			k.toks = append(k.toks, kaToken{s: m.s[start:i], pos: kaPos{p.file, p.line, m.col(start)}, cond: cond, stmt: k.stmt})
		}
	}
	return nil
}

// include reads the files a glob names, relative to the directory of the
// including file, in the order glob sorts them.
func (k *kaReader) include(pattern string, p kaPos, abs string) error {
	if pattern == "" {
		return p.errorf("include needs a file name")
	}
	if strings.ContainsAny(pattern, "{}") {
		return p.errorf("include %s: brace patterns are not supported by the importer", pattern)
	}
	if k.depth >= maxIncludeDepth {
		return p.errorf("include %s: includes nest deeper than %d files", pattern, maxIncludeDepth)
	}
	full := pattern
	if !path.IsAbs(full) {
		full = path.Join(path.Dir(abs), full)
	}
	fsys := k.opts.fsys()
	matches, err := fs.Glob(fsys, fsPath(full))
	if err != nil {
		return p.errorf("include %s: %v", pattern, err)
	}
	if len(matches) == 0 {
		if !strings.ContainsAny(pattern, "*?[") {
			return p.errorf("include %s: no such file (keepalived reports it and goes on without it; copy the file beside the configuration or fix the path)", pattern)
		}
		k.notes = append(k.notes, fmt.Sprintf("%s:%d: include %s matches no file (neither here nor, presumably, for keepalived)", p.file, p.line, pattern))
		return nil
	}
	for _, f := range matches {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return p.errorf("include %s: %v", pattern, err)
		}
		name := "/" + f
		if !path.IsAbs(pattern) {
			// Name included files as the including file names its directory.
			rel, err := filepath.Rel(path.Dir(abs), name)
			if err == nil {
				name = path.Join(path.Dir(p.file), rel)
			}
		}
		k.depth++
		err = k.file(bytes.NewReader(data), name, "/"+f)
		k.depth--
		if err != nil {
			return err
		}
	}
	return nil
}

// parseKeepalived builds the statement tree of a configuration and the
// files it includes. A statement is the words of one logical line; "{"
// opens a block for the statement before it (on the same line or the
// line above), "}" closes it.
func parseKeepalived(r io.Reader, name string, opts Options) ([]*kaNode, []string, error) {
	abs := name
	if !filepath.IsAbs(abs) {
		if a, err := filepath.Abs(name); err == nil {
			abs = a
		}
	}
	k := &kaReader{opts: opts, defs: map[string]*kaDef{}}
	if err := k.file(r, name, filepath.ToSlash(abs)); err != nil {
		return nil, nil, err
	}
	root := &kaNode{block: true}
	stack := []*kaNode{root}
	opens := []kaToken{}
	var cur *kaNode // statement being collected
	var last *kaNode
	curStmt := -1
	flush := func() {
		if cur != nil {
			top := stack[len(stack)-1]
			top.children = append(top.children, cur)
			last, cur = cur, nil
		}
	}
	for _, t := range k.toks {
		if cur != nil && t.stmt != curStmt {
			flush()
		}
		switch {
		case t.brace && t.s == "{":
			flush()
			if last == nil || last.block || stack[len(stack)-1] != parentOf(stack, last) {
				return nil, nil, t.pos.errorf("'{' without a statement to open")
			}
			last.block = true
			stack = append(stack, last)
			opens = append(opens, t)
			last = nil
		case t.brace:
			flush()
			if len(stack) == 1 {
				return nil, nil, t.pos.errorf("'}' without a matching '{'")
			}
			stack = stack[:len(stack)-1]
			opens = opens[:len(opens)-1]
			last = nil
		default:
			if cur == nil {
				cur = &kaNode{cond: t.cond}
				curStmt = t.stmt
			}
			cur.words = append(cur.words, kaWord{t.s, t.pos})
		}
	}
	flush()
	if len(stack) > 1 {
		o := opens[len(opens)-1]
		return nil, nil, o.pos.errorf("'{' of %q is never closed", stack[len(stack)-1].keyword())
	}
	return root.children, k.notes, nil
}

// parentOf reports the block that holds n: the top of the stack when n
// was its last statement.
func parentOf(stack []*kaNode, n *kaNode) *kaNode {
	top := stack[len(stack)-1]
	if len(top.children) > 0 && top.children[len(top.children)-1] == n {
		return top
	}
	return nil
}
