package config

import (
	yaml "go.yaml.in/yaml/v3"
)

// tree is a parsed YAML document in compact form: every node in one
// array, without pointers, so that a file of 100,000 entries is a few
// large allocations the garbage collector need not scan. Values are
// slices of the source text where they can be. The fast parser builds it
// directly; a document yaml/v3 parsed is converted (fromYAML); a value
// that decodes itself gets its nodes back as yaml.Node (toYAML).
type tree struct {
	src   string
	nodes []tnode
	kids  []int32  // children of collections, contiguous per collection
	strs  []string // values not in src, and tags not in knownTags
}

// tnode is one node. Kind and Style hold yaml.Kind and yaml.Style, which
// fit in a byte.
type tnode struct {
	kind, style uint8
	tag         int32 // index into knownTags, or len(knownTags)+i for strs[i]
	line, col   int32
	off, n      int32 // the value: src[off:off+n], or strs[off] when n < 0
	first, nk   int32 // children: kids[first:first+nk]; an alias's target is first (-1: none)
}

// knownTags are the tags yaml/v3 gives untagged nodes.
var knownTags = [...]string{"", "!!null", "!!bool", "!!str", "!!int", "!!float", "!!timestamp", "!!seq", "!!map", "!!merge", "!!binary"}

// Indexes of knownTags.
const (
	tagNone int32 = iota
	tagNull
	tagBool
	tagStr
	tagInt
	tagFloat
	tagTimestamp
	tagSeq
	tagMap
	tagMerge
	tagBinary
)

func (t *tree) kind(i int32) yaml.Kind { return yaml.Kind(t.nodes[i].kind) }

func (t *tree) value(i int32) string {
	n := &t.nodes[i]
	if n.n < 0 {
		return t.strs[n.off]
	}
	return t.src[n.off : n.off+n.n]
}

func (t *tree) tag(i int32) string {
	if tg := t.nodes[i].tag; tg < int32(len(knownTags)) {
		return knownTags[tg]
	}
	return t.strs[t.nodes[i].tag-int32(len(knownTags))]
}

// isNull reports whether node i is a null scalar.
func (t *tree) isNull(i int32) bool {
	n := &t.nodes[i]
	return yaml.Kind(n.kind) == yaml.ScalarNode && n.tag == tagNull
}

// content returns the children of node i.
func (t *tree) content(i int32) []int32 {
	n := &t.nodes[i]
	if n.nk <= 0 {
		return nil
	}
	return t.kids[n.first : n.first+n.nk]
}

// deref follows aliases to the node they stand for.
func (t *tree) deref(i int32) int32 {
	for k := 0; t.kind(i) == yaml.AliasNode && t.nodes[i].first >= 0 && k < 1000; k++ {
		i = t.nodes[i].first
	}
	return i
}

// pos returns the line and column of node i.
func (t *tree) pos(i int32) (int, int) { return int(t.nodes[i].line), int(t.nodes[i].col) }

// scalar returns node i as a yaml.Node without children.
func (t *tree) scalar(i int32) yaml.Node {
	n := &t.nodes[i]
	return yaml.Node{Kind: yaml.Kind(n.kind), Style: yaml.Style(n.style), Tag: t.tag(i), Value: t.value(i), Line: int(n.line), Column: int(n.col)}
}

// toYAML returns node i and its descendants as yaml.Nodes.
func (t *tree) toYAML(i int32) *yaml.Node {
	return t.toYAMLMemo(i, map[int32]*yaml.Node{})
}

func (t *tree) toYAMLMemo(i int32, done map[int32]*yaml.Node) *yaml.Node {
	if y, ok := done[i]; ok {
		return y
	}
	n := t.scalar(i)
	y := &n
	done[i] = y
	if y.Kind == yaml.AliasNode {
		if tgt := t.nodes[i].first; tgt >= 0 {
			y.Alias = t.toYAMLMemo(tgt, done)
		}
		return y
	}
	for _, c := range t.content(i) {
		y.Content = append(y.Content, t.toYAMLMemo(c, done))
	}
	return y
}

// fromYAML converts a document yaml/v3 parsed.
func fromYAML(root *yaml.Node) *tree {
	t := &tree{}
	c := &converter{t: t, index: map[*yaml.Node]int32{}, tags: map[string]int32{}}
	for i, tg := range knownTags {
		c.tags[tg] = int32(i)
	}
	c.add(root)
	for _, a := range c.aliases {
		if tgt, ok := c.index[a.to]; ok {
			t.nodes[a.node].first = tgt
		}
	}
	return t
}

type converter struct {
	t       *tree
	index   map[*yaml.Node]int32
	tags    map[string]int32
	aliases []struct {
		node int32
		to   *yaml.Node
	}
}

func (c *converter) add(y *yaml.Node) int32 {
	t := c.t
	i := int32(len(t.nodes))
	c.index[y] = i
	tag, ok := c.tags[y.Tag]
	if !ok {
		tag = int32(len(knownTags) + len(t.strs))
		t.strs = append(t.strs, y.Tag)
		c.tags[y.Tag] = tag
	}
	t.nodes = append(t.nodes, tnode{kind: uint8(y.Kind), style: uint8(y.Style), tag: tag, line: int32(y.Line), col: int32(y.Column), first: -1})
	if y.Value != "" {
		t.nodes[i].off, t.nodes[i].n = int32(len(t.strs)), -1
		t.strs = append(t.strs, y.Value)
	}
	if y.Kind == yaml.AliasNode {
		c.aliases = append(c.aliases, struct {
			node int32
			to   *yaml.Node
		}{i, y.Alias})
		return i
	}
	kids := make([]int32, len(y.Content))
	for j, k := range y.Content {
		kids[j] = c.add(k)
	}
	if len(kids) > 0 {
		t.nodes[i].first, t.nodes[i].nk = int32(len(t.kids)), int32(len(kids))
		t.kids = append(t.kids, kids...)
	}
	return i
}
