package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	yaml "go.yaml.in/yaml/v3"
)

// Pos is a position in a configuration file. Line and Column start at 1.
type Pos struct {
	File   string
	Line   int
	Column int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Error is one problem found in a configuration file.
type Error struct {
	Pos  Pos
	Path string // key path such as virtual_services[0].port; empty for the document
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Path, e.Msg)
}

// Errors is every problem found in one file. It is returned as an error
// only when it holds at least one entry.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns es as an error, or nil when it is empty. The entries are
// sorted by position.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return es
}

// AsErrors returns the individual problems held by err: the entries of an
// Errors, a single *Error, or nil when err holds neither.
func AsErrors(err error) Errors {
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	var e *Error
	if errors.As(err, &e) {
		return Errors{e}
	}
	return nil
}

// Combine merges the problems found while decoding with those found by
// validating what was decoded, so that a file's every problem is reported
// in one run. A validation problem at or below a key path that already
// failed to decode is dropped: it would only repeat that failure.
func Combine(decodeErr, validateErr error) error {
	dec, val := AsErrors(decodeErr), AsErrors(validateErr)
	if decodeErr != nil && dec == nil {
		return decodeErr // not a file problem (unreadable, say)
	}
	if validateErr != nil && val == nil {
		return validateErr
	}
	out := append(Errors(nil), dec...)
	for _, v := range val {
		shadowed := false
		for _, d := range dec {
			if d.Path != "" && (v.Path == d.Path || strings.HasPrefix(v.Path, d.Path+".") || strings.HasPrefix(v.Path, d.Path+"[")) {
				shadowed = true
				break
			}
		}
		if !shadowed {
			out = append(out, v)
		}
	}
	return out.Err()
}

// Duration is a time.Duration written as in Go ("2s", "1m30s", "250ms").
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as 2s, 500ms or 1m30s, got %q", string(b))
	}
	if v < 0 {
		return fmt.Errorf("duration must not be negative, got %q", string(b))
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration in Go notation.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Doc keeps the parsed file so that validation done after decoding can
// name file:line:column too. Positions are looked up in the YAML tree on
// demand: decoding a large file builds no table of paths.
type Doc struct {
	File string
	// Parsed is true when the file was valid YAML and was walked, so that
	// validation can run on what was decoded even if some keys failed.
	Parsed bool
	t      *tree
	root   int32  // the top mapping (or whatever the document holds)
	src    string // the text, parsed again when released (see Release)
}

// Release lets the parsed tree go: a large file's tree is several times
// its size. Positions asked for later are found by parsing the text
// again.
func (d *Doc) Release() {
	if d != nil && d.src != "" {
		d.t = nil
	}
}

// tree returns the parsed tree, parsing the text again after a Release.
func (d *Doc) tree() *tree {
	if d.t == nil && d.src != "" {
		if t, err := parseYAML(d.File, d.src); err == nil {
			d.t, d.root = t, 0
			if c := t.content(0); t.kind(0) == yaml.DocumentNode && len(c) == 1 {
				d.root = c[0]
			}
		}
	}
	return d.t
}

// Pos returns the position of path, or of its nearest ancestor that the
// file holds (a missing key is reported where its parent is). A mapping key
// is placed at the key, a list element at the element.
func (d *Doc) Pos(path string) Pos {
	if d == nil {
		return Pos{}
	}
	pos, _ := d.walk(path)
	return pos
}

// Has reports whether the file sets path explicitly.
func (d *Doc) Has(path string) bool {
	if d == nil {
		return false
	}
	_, ok := d.walk(path)
	return ok
}

// walk follows path through the YAML tree and returns the position of the
// deepest element reached and whether the whole path was found.
func (d *Doc) walk(path string) (Pos, bool) {
	t := d.tree()
	if t == nil {
		return Pos{File: d.File}, path == ""
	}
	n := d.root
	at := func(i int32) Pos {
		line, col := t.pos(i)
		return Pos{File: d.File, Line: line, Column: col}
	}
	pos := at(n)
	for rest := path; rest != ""; {
		n = t.deref(n)
		var seg string
		if rest[0] == '[' {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return pos, false
			}
			i, err := strconv.Atoi(rest[1:end])
			rest = strings.TrimPrefix(rest[end+1:], ".")
			c := t.content(n)
			if err != nil || t.kind(n) != yaml.SequenceNode || i < 0 || i >= len(c) {
				return pos, false
			}
			n = c[i]
			pos = at(n)
			continue
		}
		end := strings.IndexAny(rest, ".[")
		if end < 0 {
			seg, rest = rest, ""
		} else {
			seg, rest = rest[:end], strings.TrimPrefix(rest[end:], ".")
		}
		if t.kind(n) != yaml.MappingNode {
			return pos, false
		}
		found := false
		c := t.content(n)
		for i := 0; i+1 < len(c); i += 2 {
			if t.value(c[i]) == seg {
				pos = at(c[i])
				n = c[i+1]
				found = true
				break
			}
		}
		if !found {
			return pos, false
		}
	}
	return pos, true
}

// TopKeys returns the top-level keys of the file in the order written.
func (d *Doc) TopKeys() []string {
	if d == nil || d.tree() == nil || d.t.kind(d.root) != yaml.MappingNode {
		return nil
	}
	c := d.t.content(d.root)
	keys := make([]string, 0, len(c)/2)
	for i := 0; i+1 < len(c); i += 2 {
		keys = append(keys, d.t.value(c[i]))
	}
	return keys
}

// Errorf builds an Error at path.
func (d *Doc) Errorf(path, format string, args ...any) *Error {
	return &Error{Pos: d.Pos(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Join builds a child key path.
func Join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// Index builds the key path of a sequence element.
func Index(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

// Load reads path and decodes it into out, which must be a pointer to a
// struct. See Decode.
func Load(path string, out any) (*Doc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return &Doc{File: path}, fmt.Errorf("read config: %w", err)
	}
	return Decode(path, data, out)
}

// LoadValid is Load followed by validate, which checks (and may complete)
// what was decoded. Problems of both steps are returned together, so one
// run reports everything (see Combine).
func LoadValid(path string, out any, validate func(*Doc) error) (*Doc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return &Doc{File: path}, fmt.Errorf("read config: %w", err)
	}
	return decodeValid(path, owned(data), out, validate)
}

// DecodeValid is Decode followed by validate; see LoadValid.
func DecodeValid(name string, data []byte, out any, validate func(*Doc) error) (*Doc, error) {
	return decodeValid(name, string(data), out, validate)
}

func decodeValid(name, src string, out any, validate func(*Doc) error) (*Doc, error) {
	doc, err := decodeText(name, src, out)
	if err != nil {
		if doc.Parsed {
			err = Combine(err, validate(doc))
		}
		return doc, err
	}
	return doc, validate(doc)
}

// Decode parses data strictly into out: an unknown key, a repeated key, a
// value of the wrong type and a bad duration are all errors. All problems
// are returned together as Errors. The returned Doc is usable even when
// decoding failed.
func Decode(name string, data []byte, out any) (*Doc, error) {
	return decodeText(name, string(data), out)
}

// LoadData is LoadValid for a file already read. data must not change
// afterwards: the decoded strings point into it.
func LoadData(name string, data []byte, out any, validate func(*Doc) error) (*Doc, error) {
	return decodeValid(name, owned(data), out, validate)
}

// Blank reports whether data holds no YAML content: only blank lines and
// comments.
func Blank(data []byte) bool {
	for line := range bytes.Lines(data) {
		line = bytes.TrimLeft(line, " \t")
		if len(line) > 0 && line[0] != '#' && len(bytes.TrimSpace(line)) > 0 {
			return false
		}
	}
	return true
}

// owned returns the text of data, which nothing else holds or changes:
// the decoded strings point into it rather than into a copy.
func owned(data []byte) string {
	if len(data) == 0 {
		return ""
	}
	return unsafe.String(&data[0], len(data))
}

func decodeText(name, src string, out any) (*Doc, error) {
	doc := &Doc{File: name}
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return doc, fmt.Errorf("config.Decode: out must be a non-nil pointer, got %T", out)
	}
	t, err := parseYAML(name, src)
	if err != nil {
		return doc, err
	}
	node := int32(0)
	if c := t.content(0); t.kind(0) == yaml.DocumentNode && len(c) == 1 {
		node = c[0]
	}
	doc.t, doc.root, doc.Parsed, doc.src = t, node, true, src
	d := &decoder{doc: doc, t: t, plans: map[reflect.Type]*plan{}}
	d.decode(node, rv.Elem(), d.planFor(rv.Elem().Type()))
	return doc, d.errs.Err()
}

// parseYAML parses data into its one document node: by the fast parser
// when it can, else by yaml/v3, whose errors are reported.
func parseYAML(name string, src string) (*tree, error) {
	if t, ok := fastParse(src); ok {
		return t, nil
	}
	var root yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(src))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{Pos: Pos{File: name}, Msg: "file is empty"}}.Err()
		}
		return nil, Errors{syntaxError(name, err)}.Err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{Pos: Pos{File: name, Line: extra.Line, Column: extra.Column}, Msg: "only one YAML document is allowed"}}.Err()
	}
	return fromYAML(&root), nil
}

func syntaxError(name string, err error) *Error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.Index(rest, ":"); i > 0 {
			if n, convErr := strconv.Atoi(rest[:i]); convErr == nil {
				line = n
				msg = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return &Error{Pos: Pos{File: name, Line: line, Column: 1}, Msg: "YAML syntax: " + msg}
}

// keyPath is where the decoder is, turned into a string only when a
// problem is reported.
type keyPath struct {
	segs []pathSeg
}

// pathSeg is a mapping key, or a list element when idx >= 0.
type pathSeg struct {
	key string
	idx int
}

func (p *keyPath) String() string {
	if p == nil {
		return ""
	}
	s := ""
	for _, g := range p.segs {
		if g.idx >= 0 {
			s = Index(s, g.idx)
		} else {
			s = Join(s, g.key)
		}
	}
	return s
}

// hasOpt reports whether the comma-separated tag options opts hold o.
func hasOpt(opts, o string) bool {
	for x := range strings.SplitSeq(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

func (d *decoder) fail(n *yaml.Node, path *keyPath, format string, args ...any) {
	d.errs = append(d.errs, &Error{
		Pos:  Pos{File: d.doc.File, Line: n.Line, Column: n.Column},
		Path: path.String(),
		Msg:  fmt.Sprintf(format, args...),
	})
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// NodeDecoder is a value that decodes itself from its YAML node, for a key
// that takes more than one shape (a string or a list, say). The error's
// text is reported at the node's position.
type NodeDecoder interface {
	DecodeNode(n *yaml.Node) error
}

var nodeDecoderType = reflect.TypeFor[NodeDecoder]()

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// intBase checks the written form of an integer and gives the base to
// read it in: 10, or 0 for 0x... in a field tagged ",hex". A leading zero
// ("010": 8 to C and YAML 1.1, 10 to people) and the 0o and 0b prefixes
// are refused rather than guessed at: msg says what is wanted. Anything
// else is left to strconv in base 10.
func (d *decoder) intBase(s string) (base int, msg string) {
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	want := "want a decimal whole number"
	if d.inHex {
		want = "want a decimal whole number or 0x followed by hex digits"
	}
	if len(digits) < 2 || digits[0] != '0' {
		return 10, ""
	}
	if d.inHex && (digits[1] == 'x' || digits[1] == 'X') {
		for _, c := range digits[2:] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return 0, want
			}
		}
		return 0, ""
	}
	if strings.Trim(digits, "0123456789") == "" {
		return 0, want + " without leading zeros (is 010 ten or eight? write 10 or 8)"
	}
	return 0, want
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path *keyPath) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want a single value, got %s", kindName(n))
		return
	}
	if n.Tag == "!!null" {
		return
	}
	s := n.Value
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch strings.ToLower(s) {
		case "true", "yes", "on":
			v.SetBool(true)
		case "false", "no", "off":
			v.SetBool(false)
		default:
			d.fail(n, path, "want true or false, got %q", s)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		base, msg := d.intBase(s)
		if msg != "" {
			d.fail(n, path, "%s, got %q", msg, s)
			return
		}
		x, err := strconv.ParseInt(s, base, v.Type().Bits())
		if err != nil || n.Tag == "!!str" && n.Style != 0 {
			d.fail(n, path, "want a whole number, got %q", s)
			return
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		base, msg := d.intBase(s)
		if msg != "" {
			d.fail(n, path, "%s, got %q", msg, s)
			return
		}
		x, err := strconv.ParseUint(s, base, v.Type().Bits())
		if err != nil || n.Tag == "!!str" && n.Style != 0 {
			max := uint64(1)<<v.Type().Bits() - 1
			d.fail(n, path, "want a whole number from 0 to %d, got %q", max, s)
			return
		}
		v.SetUint(x)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			d.fail(n, path, "want a number, got %q", s)
			return
		}
		v.SetFloat(x)
	default:
		d.fail(n, path, "unsupported field type %s", v.Type())
	}
}
