package config

import (
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// fastParse builds the same node tree as go.yaml.in/yaml/v3 for the plain
// shape configuration files take (block mappings and sequences, one-line
// plain, quoted and flow values, comments), several times faster and in
// far fewer allocations. It reports false for anything else — anchors,
// tags, multi-line scalars, several documents, a tab, a syntax error, a
// shape it is not sure of — and the caller then parses with yaml/v3,
// which stays the authority for the language and its error messages.
// Comments are not kept on the nodes. FuzzFastParse holds it to yaml/v3.
func fastParse(src string) (*tree, bool) {
	if len(src) >= 1<<30 {
		return nil, false
	}
	t := &tree{src: src}
	// Room for every node of a usual file: a mapping entry has one ':',
	// a list entry one '-' or ','.
	t.nodes = make([]tnode, 0, 2*strings.Count(src, ":")+strings.Count(src, ",")+strings.Count(src, "-")+16)
	p := &fastParser{src: src, t: t}
	if !p.nextLine() || p.indent != 0 {
		return nil, false // empty (yaml/v3 says so), or an indented document
	}
	doc := p.node(yaml.DocumentNode, tagNone, 1)
	root, ok := p.block(0)
	if !ok || p.more || p.marker || p.bad {
		return nil, false
	}
	p.stack = append(p.stack, root)
	p.collection(doc, 0)
	t.kids = t.kids[:len(t.kids):len(t.kids)]
	return t, true
}

// Every byte the parser reads is printable ASCII, a space or a newline:
// a tab, a carriage return, a control character or a non-ASCII one
// (columns count characters, not bytes) sends the file to yaml/v3, except
// in comments, which are checked by validComment.

// validComment reports whether a comment holds only what yaml/v3 accepts
// there without taking it for a line break.
func validComment(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			continue
		}
		if c < 0x80 {
			return false
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xfeff ||
			r < 0xa0 || r > 0xd7ff && r < 0xe000 || r > 0xfffd && r < 0x10000 {
			return false
		}
		i += size - 1
	}
	return true
}

// printable reports whether the parser may read c as part of a value.
func printable(c byte) bool { return c >= 0x20 && c < 0x7f }

// maxFastDepth bounds the nesting the fast parser follows.
const maxFastDepth = 64

// fastParser walks src line by line. The current line is the next one
// that holds something other than blanks and a comment; a block entry
// ("- key: value") moves its start past the dash, so that the mapping it
// opens is read like any other.
type fastParser struct {
	src string
	// The current line: its number (from 1), where its content starts
	// (at column indent+1) and where it ends. more is false at the end.
	line, start, end, indent int
	more                     bool
	next                     int // offset of the line after the current one
	depth                    int
	marker                   bool // a line held a document marker
	bad                      bool // a comment held what yaml/v3 may refuse

	t     *tree
	stack []int32 // children of the collections being read
}

// nextLine moves to the next line with content.
func (p *fastParser) nextLine() bool {
	for p.next < len(p.src) {
		p.line++
		begin := p.next
		end := strings.IndexByte(p.src[begin:], '\n')
		if end < 0 {
			end = len(p.src)
		} else {
			end += begin
		}
		p.next = end + 1
		i := begin
		for i < end && p.src[i] == ' ' {
			i++
		}
		if i == end {
			continue
		}
		if p.src[i] == '#' {
			if !validComment(p.src[i:end]) {
				p.bad = true
			}
			continue
		}
		if i == begin && end-i >= 3 && (p.src[i:i+3] == "---" || p.src[i:i+3] == "...") && (end-i == 3 || p.src[i+3] == ' ') {
			p.marker = true // a document marker: left to yaml/v3
		}
		p.start, p.end, p.indent, p.more = i, end, i-begin, true
		return true
	}
	p.more = false
	return false
}

// node adds a node of the current line at column col.
func (p *fastParser) node(kind yaml.Kind, tag int32, col int) int32 {
	p.t.nodes = append(p.t.nodes, tnode{kind: uint8(kind), tag: tag, line: int32(p.line), col: int32(col), first: -1})
	return int32(len(p.t.nodes) - 1)
}

// collection gives node n the children pushed on the stack since base.
func (p *fastParser) collection(n int32, base int) {
	c := p.stack[base:]
	if len(c) > 0 {
		p.t.nodes[n].first, p.t.nodes[n].nk = int32(len(p.t.kids)), int32(len(c))
		p.t.kids = append(p.t.kids, c...)
	}
	p.stack = p.stack[:base]
}

// block reads the block node (a mapping or a sequence) that starts on the
// current line at column indent+1.
func (p *fastParser) block(indent int) (int32, bool) {
	if p.depth++; p.depth > maxFastDepth {
		return 0, false
	}
	defer func() { p.depth-- }()
	if p.isEntry(p.start) {
		return p.sequence(indent)
	}
	if _, ok := p.keyEnd(p.start); ok {
		return p.mapping(indent)
	}
	return 0, false
}

// isEntry reports whether a block sequence entry ("- " or a lone "-")
// starts at i.
func (p *fastParser) isEntry(i int) bool {
	return p.src[i] == '-' && (i+1 == p.end || p.src[i+1] == ' ')
}

// sequence reads a block sequence whose dashes are at column indent+1.
func (p *fastParser) sequence(indent int) (int32, bool) {
	n := p.node(yaml.SequenceNode, tagSeq, indent+1)
	base := len(p.stack)
	for p.more && p.indent == indent && p.isEntry(p.start) {
		i := p.start + 1
		for i < p.end && p.src[i] == ' ' {
			i++
		}
		if i == p.end || p.src[i] == '#' || p.isEntry(i) {
			return 0, false // an entry on the next lines, or a nested sequence
		}
		var item int32
		var ok bool
		if _, isKey := p.keyEnd(i); isKey {
			// A mapping that starts on the dash's line: its keys are
			// at the column of the first.
			col := indent + (i - p.start)
			p.start, p.indent = i, col
			item, ok = p.block(col)
		} else {
			item, ok = p.inline(i, indent)
		}
		if !ok {
			return 0, false
		}
		p.stack = append(p.stack, item)
	}
	if p.more && p.indent > indent {
		return 0, false
	}
	p.collection(n, base)
	return n, true
}

// mapping reads a block mapping whose keys are at column indent+1.
func (p *fastParser) mapping(indent int) (int32, bool) {
	n := p.node(yaml.MappingNode, tagMap, indent+1)
	base := len(p.stack)
	for p.more && p.indent == indent {
		colon, ok := p.keyEnd(p.start)
		if !ok {
			return 0, false
		}
		k := p.scalar(p.start, colon)
		i := colon + 1
		for i < p.end && p.src[i] == ' ' {
			i++
		}
		var v int32
		if i == p.end || p.src[i] == '#' {
			// The value is the block on the next lines: more indented,
			// or a sequence at the key's own column.
			if !validComment(p.src[i:p.end]) || !p.nextLine() || p.indent < indent || p.indent == indent && !p.isEntry(p.start) {
				return 0, false // an empty value: left to yaml/v3
			}
			v, ok = p.block(p.indent)
		} else {
			v, ok = p.inline(i, indent)
		}
		if !ok {
			return 0, false
		}
		p.stack = append(p.stack, k, v)
	}
	if p.more && p.indent > indent {
		return 0, false
	}
	p.collection(n, base)
	return n, true
}

// keyEnd reports whether a block mapping key starts at i on the current
// line, and where its ':' is.
func (p *fastParser) keyEnd(i int) (int, bool) {
	if !p.plainStart(i, false) {
		return 0, false
	}
	for j := i; j < p.end; j++ {
		switch c := p.src[j]; {
		case !printable(c):
			return 0, false
		case c == ':' && (j+1 == p.end || p.src[j+1] == ' '):
			return j, j-i < 1000 // yaml/v3 looks for a key's ':' within 1024 characters
		case c == '#' && p.src[j-1] == ' ':
			return 0, false
		}
	}
	return 0, false
}

// plainStart reports whether a plain scalar the fast parser reads starts
// at i on the current line. Besides the usual first characters, "-x"
// starts one, and in the block context "?x" and ":x" too ("::1"); x is
// held to a letter, a digit, '.' or ':' here.
func (p *fastParser) plainStart(i int, flow bool) bool {
	switch p.src[i] {
	case '-', '?', ':':
		if p.src[i] != '-' && flow || i+1 == p.end {
			return false
		}
		c := p.src[i+1]
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == ':'
	case ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', ' ':
		return false
	}
	return printable(p.src[i])
}

// inline reads the value that starts at i on the current line and ends
// it (a comment may follow), then moves to the next line, which must not
// be more indented than the block (indent) holding the value.
func (p *fastParser) inline(i, indent int) (int32, bool) {
	var n int32
	var ok bool
	switch p.src[i] {
	case '[', '{':
		n, i, ok = p.flow(i)
	case '"', '\'':
		n, i, ok = p.quoted(i)
	default:
		if !p.plainStart(i, false) {
			return 0, false
		}
		j := i
		for ; j < p.end; j++ {
			c := p.src[j]
			if !printable(c) {
				return 0, false
			}
			if c == ':' && (j+1 == p.end || p.src[j+1] == ' ') {
				return 0, false // a mapping where a value was due
			}
			if c == '#' && p.src[j-1] == ' ' {
				break
			}
		}
		n, i, ok = p.scalar(i, j), j, true
	}
	if !ok {
		return 0, false
	}
	for i < p.end && p.src[i] == ' ' {
		i++
	}
	if i < p.end && (p.src[i] != '#' || p.src[i-1] != ' ' || !validComment(p.src[i:p.end])) {
		return 0, false
	}
	p.nextLine()
	if p.more && p.indent > indent {
		return 0, false // a multi-line scalar, or worse
	}
	return n, true
}

// scalar adds the plain scalar src[i:j] (blanks after it trimmed) of the
// current line.
func (p *fastParser) scalar(i, j int) int32 {
	for j > i && p.src[j-1] == ' ' {
		j--
	}
	n := p.node(yaml.ScalarNode, resolvePlain(p.src[i:j]), p.column(i))
	p.t.nodes[n].off, p.t.nodes[n].n = int32(i), int32(j-i)
	return n
}

// column returns the column (from 1) of offset i on the current line.
func (p *fastParser) column(i int) int { return p.indent + (i - p.start) + 1 }

// quoted reads a single- or double-quoted scalar that starts and ends on
// the current line at i, and returns the offset after it. Escapes in
// double quotes are left to yaml/v3.
func (p *fastParser) quoted(i int) (int32, int, bool) {
	q := p.src[i]
	n := p.node(yaml.ScalarNode, tagStr, p.column(i))
	if q == '"' {
		p.t.nodes[n].style = uint8(yaml.DoubleQuotedStyle)
	} else {
		p.t.nodes[n].style = uint8(yaml.SingleQuotedStyle)
	}
	var buf []byte
	from := i + 1
	for j := i + 1; j < p.end; j++ {
		switch c := p.src[j]; {
		case !printable(c):
			return 0, 0, false
		case c == '\\' && q == '"':
			return 0, 0, false
		case c == q && q == '\'' && j+1 < p.end && p.src[j+1] == '\'':
			buf = append(buf, p.src[from:j+1]...)
			j++
			from = j + 1
		case c == q:
			nd := &p.t.nodes[n]
			if buf == nil {
				nd.off, nd.n = int32(from), int32(j-from)
			} else {
				nd.off, nd.n = int32(len(p.t.strs)), -1
				p.t.strs = append(p.t.strs, string(append(buf, p.src[from:j]...)))
			}
			return n, j + 1, true
		}
	}
	return 0, 0, false // continues on the next line
}

// flow reads a flow sequence or mapping that closes on the current line
// and returns the offset after it.
func (p *fastParser) flow(i int) (int32, int, bool) {
	if p.depth++; p.depth > maxFastDepth {
		return 0, 0, false
	}
	defer func() { p.depth-- }()
	open := p.src[i]
	var n int32
	closer := byte(']')
	if open == '{' {
		n, closer = p.node(yaml.MappingNode, tagMap, p.column(i)), '}'
	} else {
		n = p.node(yaml.SequenceNode, tagSeq, p.column(i))
	}
	p.t.nodes[n].style = uint8(yaml.FlowStyle)
	base := len(p.stack)
	i = p.skipSpaces(i + 1)
	if i < p.end && p.src[i] == closer {
		return n, i + 1, true
	}
	for {
		var v int32
		var ok bool
		if open == '{' {
			k, j, ok := p.flowValue(i)
			if !ok || p.t.kind(k) != yaml.ScalarNode || p.t.nodes[k].style != 0 || j >= p.end || p.src[j] != ':' || j+1 == p.end || p.src[j+1] != ' ' {
				return 0, 0, false
			}
			p.stack = append(p.stack, k)
			i = p.skipSpaces(j + 1)
		}
		v, i, ok = p.flowValue(i)
		if !ok || i >= p.end {
			return 0, 0, false
		}
		p.stack = append(p.stack, v)
		switch p.src[i] {
		case ',':
			i = p.skipSpaces(i + 1)
			if i >= p.end || p.src[i] == closer {
				return 0, 0, false // a trailing comma, or more on the next line
			}
		case closer:
			p.collection(n, base)
			return n, i + 1, true
		default:
			return 0, 0, false
		}
	}
}

// flowValue reads one value inside a flow collection at i and returns the
// offset of what follows it (blanks skipped).
func (p *fastParser) flowValue(i int) (int32, int, bool) {
	if i >= p.end {
		return 0, 0, false
	}
	var n int32
	var ok bool
	switch c := p.src[i]; {
	case c == '[' || c == '{':
		n, i, ok = p.flow(i)
	case c == '"' || c == '\'':
		n, i, ok = p.quoted(i)
	case p.plainStart(i, true):
		j := i
	scan:
		for ; j < p.end; j++ {
			switch p.src[j] {
			case ',', '?', '[', ']', '{', '}':
				break scan
			case ':':
				if j+1 == p.end || p.src[j+1] == ' ' {
					break scan
				}
			case '#':
				if p.src[j-1] == ' ' {
					return 0, 0, false // a comment inside: the collection goes on
				}
			default:
				if !printable(p.src[j]) {
					return 0, 0, false
				}
			}
		}
		n, i, ok = p.scalar(i, j), j, true
	}
	if !ok {
		return 0, 0, false
	}
	return n, p.skipSpaces(i), true
}

func (p *fastParser) skipSpaces(i int) int {
	for i < p.end && p.src[i] == ' ' {
		i++
	}
	return i
}

// resolvePlain returns the tag yaml/v3 gives the plain scalar s (an index
// of knownTags). What yaml/v3 looks up in its table, and values that can
// be nothing but strings or plain integers, are answered here; the
// others are resolved by yaml/v3 itself.
func resolvePlain(s string) int32 {
	if s == "" {
		return tagNull
	}
	switch c := s[0]; {
	case c >= '1' && c <= '9' || c == '0' && len(s) == 1:
		if len(s) <= 18 && allDigits(s) {
			return tagInt
		}
		if !maybeNumber(s) {
			return tagStr
		}
	case c == '+' || c == '-' || c == '0':
		if !maybeNumber(s) && (len(s) < 2 || s[1] != '.') { // "-.inf" is a float
			return tagStr
		}
	case c == '.':
	default:
		switch s {
		case "true", "True", "TRUE", "false", "False", "FALSE":
			return tagBool
		case "null", "Null", "NULL", "~":
			return tagNull
		case "<<":
			return tagMerge
		}
		return tagStr // yaml/v3 resolves nothing else that starts so
	}
	switch (&yaml.Node{Kind: yaml.ScalarNode, Value: s}).ShortTag() {
	case "!!null":
		return tagNull
	case "!!bool":
		return tagBool
	case "!!int":
		return tagInt
	case "!!float":
		return tagFloat
	case "!!timestamp":
		return tagTimestamp
	case "!!merge":
		return tagMerge
	}
	return tagStr
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// maybeNumber reports whether s, which starts with a sign or a digit,
// could be an integer, a float or a timestamp to yaml/v3. Addresses
// ("10.0.0.1", "2001:db8::1") cannot: an integer or a float has at most
// one dot and no colon, and a timestamp starts with four digits and '-'.
func maybeNumber(s string) bool {
	if len(s) > 4 && s[4] == '-' {
		return true // perhaps a date
	}
	dots := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if dots++; dots > 1 {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F',
			c == 'x', c == 'X', c == 'o', c == 'O', c == '+', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
