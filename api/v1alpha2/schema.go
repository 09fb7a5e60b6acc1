package v1alpha2

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// schemaCheck walks a YAML node tree against a Go type the way
// sigs.k8s.io/yaml will decode it, and reports, each with its line, what the
// decoder would reject or silently drop: unknown fields, duplicate keys and values
// of the wrong type. Unlike the decoder it reports every problem, not the first.
// It also records the line of every field path into lines.
type schemaCheck struct {
	rep   *report
	lines lineIndex
	// expanding holds the anchors whose alias is being walked: an alias inside its own
	// anchor is a cycle. visits counts the nodes walked through aliases; aborted is set once
	// the walk stopped on a cycle or at maxVisits.
	expanding map[*yaml.Node]bool
	visits    int
	aborted   bool
}

// maxDepth guards against absurd nesting; maxVisits, the nodes walked again through
// aliases, against aliases that expand a small file into a huge one ("billion laughs").
const (
	maxDepth  = 64
	maxVisits = 1 << 14
)

// enter counts a visit of n at path and reports whether the walk goes on.
func (s *schemaCheck) enter(n *yaml.Node, path string) bool {
	if s.aborted {
		return false
	}
	if len(s.expanding) == 0 {
		return true
	}
	if s.visits++; s.visits > maxVisits {
		s.aborted = true
		s.rep.errorAt(path, n.Line, "the document is too large once its aliases are expanded")
		return false
	}
	return true
}

// alias walks the anchor alias n refers to with fn, unless n is inside that anchor.
func (s *schemaCheck) alias(n *yaml.Node, path string, fn func(*yaml.Node)) {
	if s.expanding == nil {
		s.expanding = map[*yaml.Node]bool{}
	}
	if s.expanding[n.Alias] {
		s.aborted = true
		s.rep.errorAt(path, n.Line, "alias *%s is inside its own anchor (a cycle)", n.Value)
		return
	}
	s.expanding[n.Alias] = true
	fn(n.Alias)
	delete(s.expanding, n.Alias)
}

func (s *schemaCheck) walk(n *yaml.Node, t reflect.Type, path string, depth int) {
	if !s.enter(n, path) {
		return
	}
	if depth > maxDepth {
		s.rep.errorAt(path, n.Line, "nesting too deep")
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		s.alias(n, path, func(a *yaml.Node) { s.walk(a, t, path, depth+1) })
		return
	}
	if _, ok := s.lines[path]; !ok {
		s.lines[path] = n.Line
	}
	if isNull(n) {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == flagArgsType {
		s.walkFlagArgs(n, path)
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		s.walkAny(n, path, depth)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			s.typeError(n, path, "a mapping")
			return
		}
		s.walkStruct(n, t, path, map[string]int{}, false, depth)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			s.typeError(n, path, "a mapping")
			return
		}
		s.eachPair(n, path, depth, func(k, v *yaml.Node, child string) {
			s.walk(v, t.Elem(), child, depth+1)
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			s.typeError(n, path, "a list")
			return
		}
		for i, item := range n.Content {
			child := indexPath(path, i)
			s.lines[child] = item.Line
			s.walk(item, t.Elem(), child, depth+1)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			s.typeError(n, path, "a string")
		} else {
			keepText(n)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || !isBool(n) {
			s.typeError(n, path, "true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			s.typeError(n, path, "an integer")
		}
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			s.typeError(n, path, "a number")
		}
	}
}

// keepText makes scalar n a string holding its text as written: unquoted, 1.30 would
// decode as "1.3" and yes as "true".
func keepText(n *yaml.Node) {
	if n.ShortTag() != "!!str" || isBool(n) {
		n.Tag, n.Style = "!!str", yaml.DoubleQuotedStyle
	}
}

// walkStruct checks the keys of mapping n against the json fields of struct t.
// seen holds the keys already set. Keys of "<<" merges come after the mapping's
// own keys and never override them; merged is true while walking those.
func (s *schemaCheck) walkStruct(n *yaml.Node, t reflect.Type, path string, seen map[string]int, merged bool, depth int) {
	fields := jsonFields(t)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		name := k.Value
		child := childPath(path, name)
		f, ok := lookupField(fields, name)
		if !ok {
			msg := fmt.Sprintf("unknown field %q", name)
			if sug := suggest(name, fields); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			}
			s.rep.errorAt(child, k.Line, "%s", msg)
			continue
		}
		if first, dup := seen[f.Name]; dup {
			if !merged {
				s.rep.errorAt(child, k.Line, "duplicate key %q (first set on line %d)", name, first)
			}
			continue
		}
		seen[f.Name] = k.Line
		s.lines[child] = k.Line
		s.walk(v, f.Type, child, depth+1)
	}
	for _, m := range merges {
		s.walkMerge(m, t, path, seen, depth)
	}
}

// walkMerge handles a "<<" merge key: its mapping(s) fill the same struct.
func (s *schemaCheck) walkMerge(v *yaml.Node, t reflect.Type, path string, seen map[string]int, depth int) {
	if depth > maxDepth || !s.enter(v, path) {
		return
	}
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		s.alias(v, path, func(a *yaml.Node) { s.walkMerge(a, t, path, seen, depth+1) })
		return
	}
	switch v.Kind {
	case yaml.MappingNode:
		s.walkStruct(v, t, path, seen, true, depth+1)
	case yaml.SequenceNode:
		for _, m := range v.Content {
			s.walkMerge(m, t, path, seen, depth+1)
		}
	default:
		s.rep.errorAt(path, v.Line, "a merge key (<<) needs a mapping")
	}
}

// eachPair calls fn for every key/value of a mapping node, recording lines and
// reporting duplicate keys.
func (s *schemaCheck) eachPair(n *yaml.Node, path string, depth int, fn func(k, v *yaml.Node, child string)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			continue // free-form content: merged keys need no checking
		}
		child := childPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			s.rep.errorAt(child, k.Line, "duplicate key %q (first set on line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		s.lines[child] = k.Line
		fn(k, v, child)
	}
}

// walkAny records lines (and duplicate keys) of free-form content.
func (s *schemaCheck) walkAny(n *yaml.Node, path string, depth int) {
	if depth > maxDepth || !s.enter(n, path) {
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias != nil {
			s.alias(n, path, func(a *yaml.Node) { s.walkAny(a, path, depth+1) })
		}
	case yaml.MappingNode:
		s.eachPair(n, path, depth, func(_, v *yaml.Node, child string) { s.walkAny(v, child, depth+1) })
	case yaml.SequenceNode:
		for i, item := range n.Content {
			child := indexPath(path, i)
			s.lines[child] = item.Line
			s.walkAny(item, child, depth+1)
		}
	}
}

// typeError reports a value of the wrong type, then blanks it (to null) so the
// rest of the file still decodes and can be validated; later findings on the
// same path are dropped (see report.broken).
func (s *schemaCheck) typeError(n *yaml.Node, path, want string) {
	s.rep.errorAt(path, n.Line, "expected %s, got %s", want, describe(n))
	s.rep.broken = append(s.rep.broken, path)
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null", Line: n.Line, Column: n.Column}
}

// describe names what a node holds, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.ShortTag() == "!!str" {
		return strconv.Quote(n.Value)
	}
	return n.Value
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// isBool accepts what the YAML 1.1 decoder behind sigs.k8s.io/yaml reads as a
// boolean: true/false and, unquoted, yes/no/on/off/y/n in their usual cases.
func isBool(n *yaml.Node) bool {
	if n.ShortTag() == "!!bool" {
		return true
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		return false
	}
	switch n.Value {
	case "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
		"on", "On", "ON", "off", "Off", "OFF":
		return true
	}
	return false
}

// jsonFields maps the json name of every field of struct t to the field.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

// lookupField finds a field by json name, exactly or, like encoding/json,
// ignoring case.
func lookupField(fields map[string]reflect.StructField, name string) (reflect.StructField, bool) {
	if f, ok := fields[name]; ok {
		return f, true
	}
	for k, f := range fields {
		if strings.EqualFold(k, name) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// suggest returns the field name closest to name when it is close enough to be
// a likely typo, else "".
func suggest(name string, fields map[string]reflect.StructField) string {
	best, bestD := "", len(name)/3+2
	for k := range fields {
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD || (d == bestD && best != "" && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
