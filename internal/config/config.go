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
	root   *yaml.Node // the top mapping (or whatever the document holds)
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
	n := d.root
	if n == nil {
		return Pos{File: d.File}, path == ""
	}
	pos := Pos{File: d.File, Line: n.Line, Column: n.Column}
	for rest := path; rest != ""; {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var seg string
		if rest[0] == '[' {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return pos, false
			}
			i, err := strconv.Atoi(rest[1:end])
			rest = strings.TrimPrefix(rest[end+1:], ".")
			if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return pos, false
			}
			n = n.Content[i]
			pos = Pos{File: d.File, Line: n.Line, Column: n.Column}
			continue
		}
		end := strings.IndexAny(rest, ".[")
		if end < 0 {
			seg, rest = rest, ""
		} else {
			seg, rest = rest[:end], strings.TrimPrefix(rest[end:], ".")
		}
		if n.Kind != yaml.MappingNode {
			return pos, false
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Value == seg {
				pos = Pos{File: d.File, Line: k.Line, Column: k.Column}
				n = n.Content[i+1]
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
	if d == nil || d.root == nil || d.root.Kind != yaml.MappingNode {
		return nil
	}
	keys := make([]string, 0, len(d.root.Content)/2)
	for i := 0; i+1 < len(d.root.Content); i += 2 {
		keys = append(keys, d.root.Content[i].Value)
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
	return DecodeValid(path, data, out, validate)
}

// DecodeValid is Decode followed by validate; see LoadValid.
func DecodeValid(name string, data []byte, out any, validate func(*Doc) error) (*Doc, error) {
	doc, err := Decode(name, data, out)
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
	doc := &Doc{File: name}
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return doc, fmt.Errorf("config.Decode: out must be a non-nil pointer, got %T", out)
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return doc, Errors{{Pos: Pos{File: name}, Msg: "file is empty"}}.Err()
		}
		return doc, Errors{syntaxError(name, err)}.Err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return doc, Errors{{Pos: Pos{File: name, Line: extra.Line, Column: extra.Column}, Msg: "only one YAML document is allowed"}}.Err()
	}
	d := &decoder{doc: doc, fields: map[reflect.Type]map[string][]int{}}
	node := &root
	if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	doc.root = node
	doc.Parsed = true
	d.decode(node, rv.Elem(), nil)
	return doc, d.errs.Err()
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

// keyPath is a key path built while descending, turned into a string
// only when a problem is reported.
type keyPath struct {
	parent *keyPath
	key    string
	idx    int // for list elements, with key == ""
}

func (p *keyPath) String() string {
	if p == nil {
		return ""
	}
	if p.key == "" {
		return Index(p.parent.String(), p.idx)
	}
	return Join(p.parent.String(), p.key)
}

type decoder struct {
	doc    *Doc
	errs   Errors
	fields map[reflect.Type]map[string][]int // structFields, computed once per type
	hex    map[reflect.Type]map[string]bool  // hexFields, computed once per type
	// inHex is set while a field tagged ",hex" is decoded: its integers
	// may be written as 0x... too.
	inHex bool
}

func (d *decoder) structFields(t reflect.Type) map[string][]int {
	if f, ok := d.fields[t]; ok {
		return f
	}
	f := structFields(t)
	d.fields[t] = f
	return f
}

// hexFields names the keys of t whose integers may be hexadecimal.
func (d *decoder) hexFields(t reflect.Type) map[string]bool {
	if d.hex == nil {
		d.hex = map[reflect.Type]map[string]bool{}
	}
	if h, ok := d.hex[t]; ok {
		return h
	}
	var h map[string]bool
	for name, idx := range d.structFields(t) {
		if _, opts, _ := strings.Cut(t.FieldByIndex(idx).Tag.Get("yaml"), ","); hasOpt(opts, "hex") {
			if h == nil {
				h = map[string]bool{}
			}
			h[name] = true
		}
	}
	d.hex[t] = h
	return h
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

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path *keyPath) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if v.Kind() == reflect.Pointer {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		if err := v.Addr().Interface().(NodeDecoder).DecodeNode(n); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a single value, got %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), &keyPath{parent: path, idx: i})
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping, got %s", kindName(n))
			return
		}
		if v.Type().Key().Kind() != reflect.String {
			d.fail(n, path, "unsupported map key type %s", v.Type().Key())
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, ev, &keyPath{parent: path, key: k.Value})
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), ev)
		}
		v.Set(m)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path *keyPath) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	fields := d.structFields(v.Type())
	hex := d.hexFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := &keyPath{parent: path, key: k.Value}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "keys must be plain words")
			continue
		}
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k, p, "unknown key %q (known keys here: %s)", k.Value, strings.Join(sortedKeys(fields), ", "))
			continue
		}
		if seen[k.Value] {
			d.fail(k, p, "key %q is set twice", k.Value)
			continue
		}
		seen[k.Value] = true
		if hex[k.Value] && !d.inHex {
			d.inHex = true
			d.decode(val, v.FieldByIndex(idx), p)
			d.inHex = false
			continue
		}
		d.decode(val, v.FieldByIndex(idx), p)
	}
}

func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			for k, idx := range structFields(f.Type) {
				out[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = []int{i}
	}
	return out
}

func sortedKeys(m map[string][]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
