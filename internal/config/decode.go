package config

import (
	"encoding"
	"reflect"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// decoder fills a Go value from a parsed document by reflection. What it
// learns of each Go type (fields by key, element types, which interfaces
// it implements) is kept in a plan, computed once per type per Decode.
type decoder struct {
	doc   *Doc
	t     *tree
	errs  Errors
	plans map[reflect.Type]*plan
	segs  []pathSeg // where the decoder is (see keyPath)
	// inHex is set while a field tagged ",hex" is decoded: its integers
	// may be written as 0x... too.
	inHex bool
}

// plan is how values of one type are decoded.
type plan struct {
	typ    reflect.Type
	kind   reflect.Kind
	node   bool  // *T implements NodeDecoder
	text   bool  // *T implements encoding.TextUnmarshaler
	elem   *plan // of a pointer's, slice's or map's elements
	fields []fieldPlan
	known  string // the keys of a struct, sorted, for messages
}

type fieldPlan struct {
	name  string
	index []int
	n     int  // position, for the set of keys seen
	hex   bool // tagged ",hex": integers may be 0x...
	plan  *plan
}

// field returns the field a key names. A struct has a few fields: going
// over them is quicker than hashing the key.
func (p *plan) field(key string) (*fieldPlan, bool) {
	for i := range p.fields {
		if f := &p.fields[i]; len(f.name) == len(key) && f.name == key {
			return f, true
		}
	}
	return nil, false
}

// planFor returns the plan of t, making it (and its element types' plans)
// on first use.
func (d *decoder) planFor(t reflect.Type) *plan {
	if p, ok := d.plans[t]; ok {
		return p
	}
	p := &plan{typ: t, kind: t.Kind()}
	d.plans[t] = p // before the elements: a type may contain itself
	pt := reflect.PointerTo(t)
	p.node = pt.Implements(nodeDecoderType)
	p.text = pt.Implements(textUnmarshalerType)
	switch p.kind {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		p.elem = d.planFor(t.Elem())
	case reflect.Struct:
		fields := structFields(t)
		for i, k := range sortedKeys(fields) {
			idx := fields[k]
			f := t.FieldByIndex(idx)
			_, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			p.fields = append(p.fields, fieldPlan{name: k, index: idx, n: i, hex: hasOpt(opts, "hex"), plan: d.planFor(f.Type)})
		}
		p.known = strings.Join(sortedKeys(fields), ", ")
	}
	return p
}

// here is the key path of the value being decoded.
func (d *decoder) here() *keyPath { return &keyPath{segs: d.segs} }

func (d *decoder) failAt(i int32, format string, args ...any) {
	n := d.t.scalar(i)
	d.fail(&n, d.here(), format, args...)
}

func (d *decoder) decode(i int32, v reflect.Value, p *plan) {
	t := d.t
	i = t.deref(i)
	if p.kind == reflect.Pointer {
		if t.isNull(i) {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(p.typ.Elem()))
		}
		d.decode(i, v.Elem(), p.elem)
		return
	}
	if p.node && v.CanAddr() {
		if err := v.Addr().Interface().(NodeDecoder).DecodeNode(t.toYAML(i)); err != nil {
			d.failAt(i, "%v", err)
		}
		return
	}
	if p.text && v.CanAddr() {
		if t.kind(i) != yaml.ScalarNode {
			n := t.scalar(i)
			d.failAt(i, "want a single value, got %s", kindName(&n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(t.value(i))); err != nil {
			d.failAt(i, "%v", err)
		}
		return
	}
	switch p.kind {
	case reflect.Struct:
		d.decodeStruct(i, v, p)
	case reflect.Slice:
		if t.isNull(i) {
			return
		}
		if t.kind(i) != yaml.SequenceNode {
			n := t.scalar(i)
			d.failAt(i, "want a list, got %s", kindName(&n))
			return
		}
		c := t.content(i)
		s := reflect.MakeSlice(p.typ, len(c), len(c))
		d.segs = append(d.segs, pathSeg{})
		for j, e := range c {
			d.segs[len(d.segs)-1] = pathSeg{idx: j}
			d.decode(e, s.Index(j), p.elem)
		}
		d.segs = d.segs[:len(d.segs)-1]
		v.Set(s)
	case reflect.Map:
		if t.kind(i) != yaml.MappingNode {
			n := t.scalar(i)
			d.failAt(i, "want a mapping, got %s", kindName(&n))
			return
		}
		if p.typ.Key().Kind() != reflect.String {
			d.failAt(i, "unsupported map key type %s", p.typ.Key())
			return
		}
		c := t.content(i)
		m := reflect.MakeMap(p.typ)
		d.segs = append(d.segs, pathSeg{})
		for j := 0; j+1 < len(c); j += 2 {
			k := t.value(c[j])
			d.segs[len(d.segs)-1] = pathSeg{key: k, idx: -1}
			ev := reflect.New(p.typ.Elem()).Elem()
			d.decode(c[j+1], ev, p.elem)
			m.SetMapIndex(reflect.ValueOf(k).Convert(p.typ.Key()), ev)
		}
		d.segs = d.segs[:len(d.segs)-1]
		v.Set(m)
	default:
		if !d.plainScalar(i, v, p.kind) {
			n := t.scalar(i)
			d.decodeScalar(&n, v, d.here())
		}
	}
}

// plainScalar sets v from the commonest values without going through
// decodeScalar: any value into a string, a plain decimal integer (no
// sign, no leading zero) that fits into an integer. It reports false,
// having done nothing, for everything else.
func (d *decoder) plainScalar(i int32, v reflect.Value, k reflect.Kind) bool {
	t := d.t
	n := &t.nodes[i]
	if yaml.Kind(n.kind) != yaml.ScalarNode || n.tag == tagNull {
		return false
	}
	switch k {
	case reflect.String:
		v.SetString(t.value(i))
		return true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s := t.value(i)
		if n.tag != tagInt || n.style != 0 || len(s) == 0 || len(s) > 18 || s[0] == '0' && len(s) > 1 || !allDigits(s) {
			return false
		}
		x := uint64(0)
		for j := 0; j < len(s); j++ {
			x = x*10 + uint64(s[j]-'0')
		}
		if k >= reflect.Uint {
			if v.OverflowUint(x) {
				return false
			}
			v.SetUint(x)
		} else {
			if v.OverflowInt(int64(x)) {
				return false
			}
			v.SetInt(int64(x))
		}
		return true
	}
	return false
}

func (d *decoder) decodeStruct(i int32, v reflect.Value, p *plan) {
	t := d.t
	if t.isNull(i) {
		return
	}
	if t.kind(i) != yaml.MappingNode {
		n := t.scalar(i)
		d.failAt(i, "want a mapping, got %s", kindName(&n))
		return
	}
	var seenSmall [2]uint64
	var seenLarge []bool
	if len(p.fields) > 128 {
		seenLarge = make([]bool, len(p.fields))
	}
	c := t.content(i)
	d.segs = append(d.segs, pathSeg{})
	defer func() { d.segs = d.segs[:len(d.segs)-1] }()
	for j := 0; j+1 < len(c); j += 2 {
		k, val := c[j], c[j+1]
		if t.kind(k) != yaml.ScalarNode {
			d.segs = d.segs[:len(d.segs)-1]
			d.failAt(k, "keys must be plain words")
			d.segs = append(d.segs, pathSeg{})
			continue
		}
		key := t.value(k)
		d.segs[len(d.segs)-1] = pathSeg{key: key, idx: -1}
		f, ok := p.field(key)
		if !ok {
			d.failAt(k, "unknown key %q (known keys here: %s)", key, p.known)
			continue
		}
		var seen bool
		if seenLarge != nil {
			seen, seenLarge[f.n] = seenLarge[f.n], true
		} else {
			bit := uint64(1) << (f.n % 64)
			seen = seenSmall[f.n/64]&bit != 0
			seenSmall[f.n/64] |= bit
		}
		if seen {
			d.failAt(k, "key %q is set twice", key)
			continue
		}
		if f.hex && !d.inHex {
			d.inHex = true
			d.decode(val, v.FieldByIndex(f.index), f.plan)
			d.inHex = false
			continue
		}
		d.decode(val, v.FieldByIndex(f.index), f.plan)
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
