package v1alpha2

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kk-project/kk/api/config"
)

// ParseOptions tune Parse and Load. The zero value is what Load and Parse use.
type ParseOptions struct {
	// SkipFileChecks turns off the checks that look at the local disk: that
	// privateKeyPath and the external etcd TLS files exist. Use it to check a file
	// meant for another machine (kk's own tests of examples/ do).
	SkipFileChecks bool
	// HomeDir is what "~" expands to; "" means the current user's home directory.
	HomeDir string
}

// Load reads the Cluster file at path. See ParseWithOptions.
func Load(path string) (*config.Cluster, Warnings, error) {
	return LoadWithOptions(path, ParseOptions{})
}

// LoadWithOptions reads the Cluster file at path with options o. See ParseWithOptions.
func LoadWithOptions(path string, o ParseOptions) (*config.Cluster, Warnings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, nil, ErrorList{{File: path, Msg: "cannot read the file: " + err.Error()}}
	}
	return ParseWithOptions(path, data, o)
}

// Parse reads a Cluster file's content; source names it in messages (a path).
// See ParseWithOptions.
func Parse(source string, data []byte) (*config.Cluster, Warnings, error) {
	return ParseWithOptions(source, data, ParseOptions{})
}

// ParseWithOptions reads a Cluster file's content: it decodes data, applies the
// defaults, expands roleGroups and validates the result.
//
// On success it returns the cluster, with Source set to source, and the warnings.
// When anything is wrong it returns a nil cluster, the warnings found so far and
// an ErrorList holding every problem, sorted by line.
//
// data may hold several YAML documents: exactly one must be a kind: Cluster; KubeKey appends
// ks-installer's ClusterConfiguration, which becomes the cluster's Platform (see
// parseClusterConfiguration); other documents are ignored with a warning.
func ParseWithOptions(source string, data []byte, o ParseOptions) (*config.Cluster, Warnings, error) {
	rep := &report{file: source, lines: lineIndex{}}
	if o.HomeDir == "" {
		if home, err := os.UserHomeDir(); err == nil {
			o.HomeDir = home
		}
	}
	doc, platform := pickClusterDocument(data, rep)
	if doc == nil {
		return nil, rep.warns, rep.err()
	}
	var obj Cluster
	if !decodeChecked(doc, rep, &obj, Kind) {
		return nil, rep.warns, rep.err()
	}
	c := build(&obj, source, o, rep)
	if platform != nil {
		parseClusterConfiguration(platform, rep, &c.Platform, o.HomeDir)
	}
	if _, written := rep.lines["spec.storage.openebs.basePath"]; written && !c.Platform.LocalStorage {
		rep.warnf("spec.storage.openebs.basePath", "the directory of kk's local volumes, which kk installs with KubeSphere's "+
			"ClusterConfiguration in the file or with --with-local-storage (KubeKey installs OpenEBS's there)")
	}
	if err := rep.err(); err != nil {
		return nil, rep.warns, err
	}
	return c, rep.warns, nil
}

func encodeNode(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// pickClusterDocument parses data and returns the root mapping of its one
// kind: Cluster document, and of its ClusterConfiguration when it has one. It reports
// syntax errors, a wrong kind or apiVersion, and returns nil when there is no
// usable Cluster.
func pickClusterDocument(data []byte, rep *report) (cluster, platform *yaml.Node) {
	roots, err := documents(data)
	if err != nil {
		line, msg := yamlErrorLine(data, err)
		rep.errorAt("", line, "invalid YAML: %s", msg)
		return nil, nil
	}
	if len(roots) == 0 {
		rep.errorAt("", 0, "the file is empty: expected a kind: Cluster document")
		return nil, nil
	}
	var clusters, others []*yaml.Node
	var otherKinds []string
	for _, r := range roots {
		if r.Kind != yaml.MappingNode {
			others = append(others, r)
			otherKinds = append(otherKinds, describe(r))
			continue
		}
		switch _, kind := scalarField(r, "kind"); {
		case kind == Kind:
			clusters = append(clusters, r)
		case kind == ClusterConfigurationKind && platform == nil:
			platform = r
		case kind == ClusterConfigurationKind:
			rep.errorAt("", r.Line, "a second kind: ClusterConfiguration document: kk reads one per file")
		default:
			others = append(others, r)
			otherKinds = append(otherKinds, strconv.Quote(kind))
		}
	}
	if len(clusters) == 0 {
		if platform != nil {
			otherKinds = append(otherKinds, strconv.Quote(ClusterConfigurationKind))
		}
		reportNotACluster(roots, otherKinds, rep)
		return nil, nil
	}
	for _, extra := range clusters[1:] {
		rep.errorAt("", extra.Line, "a second kind: Cluster document: kk reads one cluster per file")
	}
	for i, r := range others {
		rep.warns = append(rep.warns, formatLocated(rep.file, r.Line, "",
			"document of kind "+otherKinds[i]+" is not a Cluster and is ignored"))
	}
	c := clusters[0]
	checkAPIVersion(c, rep)
	return c, platform
}

// decodeChecked checks doc against the schema of *out's type (every problem reported at its
// line) and decodes it into out. It decodes the checked tree, not the file's bytes: the tree
// holds only the chosen document, with wrongly typed values dropped and scalars meant as
// strings quoted. kind names the document in the one error it adds.
func decodeChecked(doc *yaml.Node, rep *report, out any, kind string) bool {
	check := &schemaCheck{rep: rep, lines: rep.lines}
	check.walk(doc, reflect.TypeOf(out).Elem(), "", 0)
	if check.aborted {
		return false
	}
	src, err := encodeNode(doc)
	if err != nil {
		rep.errorf("", "cannot re-encode the %s document: %v", kind, err)
		return false
	}
	if err := sigsyaml.Unmarshal(src, out); err != nil {
		rep.errorf("", "%v", err)
		return false
	}
	return true
}

// documents returns the root node of every non-empty YAML document in data.
func documents(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var roots []*yaml.Node
	for {
		var d yaml.Node
		err := dec.Decode(&d)
		if err == io.EOF {
			return roots, nil
		}
		if err != nil {
			return nil, err
		}
		if d.Kind == yaml.DocumentNode && len(d.Content) == 1 && !isNull(d.Content[0]) {
			roots = append(roots, d.Content[0])
		}
	}
}

func reportNotACluster(roots []*yaml.Node, kinds []string, rep *report) {
	if len(roots) > 1 {
		rep.errorAt("", 0, "no kind: Cluster document in the file (found kinds %s)", strings.Join(kinds, ", "))
		return
	}
	r := roots[0]
	if r.Kind != yaml.MappingNode {
		rep.errorAt("", r.Line, "expected a Cluster object (a mapping with apiVersion, kind, metadata and spec), got %s", describe(r))
		return
	}
	line, kind := scalarField(r, "kind")
	switch kind {
	case "":
		rep.errorAt("kind", max(line, r.Line), "kind is missing: expected kind: Cluster with apiVersion: %s", APIVersion)
	case "Manifest":
		rep.errorAt("kind", line, "this is a KubeKey Manifest (kind: Manifest lists the artifacts of an offline package), not a Cluster: "+
			"kk needs a kind: Cluster file here (write one with \"kk create config\")")
	default:
		rep.errorAt("kind", line, "kind %q is not supported: expected kind: Cluster with apiVersion: %s", kind, APIVersion)
	}
}

func checkAPIVersion(c *yaml.Node, rep *report) {
	line, v := scalarField(c, "apiVersion")
	switch {
	case v == APIVersion:
	case v == "":
		rep.errorAt("apiVersion", max(line, c.Line), "apiVersion is missing: expected %s", APIVersion)
	case strings.HasPrefix(v, Group+"/"):
		rep.errorAt("apiVersion", line, "apiVersion %q is not supported: kk reads %s (KubeKey 2 and later write it)", v, APIVersion)
	default:
		rep.errorAt("apiVersion", line, "apiVersion %q is not supported: expected %s", v, APIVersion)
	}
}

// scalarField returns the line and value of a top-level scalar key of mapping m.
func scalarField(m *yaml.Node, key string) (int, string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := m.Content[i+1]
			if v.Kind == yaml.ScalarNode && !isNull(v) {
				return m.Content[i].Line, v.Value
			}
			return m.Content[i].Line, ""
		}
	}
	return 0, ""
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): `)
	yamlAnchorRE = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// parserProblems are the messages of yaml.v3's parser (as opposed to its scanner). For
// these yaml.v3 prints its 0-based line (the line of the construct being parsed, else of the
// problem): one less than the file's line, and no line at all on the first one. Scanner
// messages carry the 1-based line already.
var parserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected key",
	"did not find expected '-' indicator",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found duplicate %YAML directive",
	"found duplicate %TAG directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// decoderProblems start the messages of yaml.v3's errors that are not syntax errors (they
// come after parsing, without a line).
var decoderProblems = []string{"unknown anchor", "document contains excessive aliasing", "anchor '", "attempted to go past", "cannot decode"}

// readerProblems are the messages of yaml.v3's reader, which checks the encoding and gives no
// line.
var readerProblems = []string{
	"invalid leading UTF-8 octet", "incomplete UTF-8 octet sequence", "invalid trailing UTF-8 octet",
	"invalid length of a UTF-8 sequence", "invalid Unicode character", "control characters are not allowed",
}

// badCharLine is the line of the first byte of data that is not UTF-8 or not a character
// YAML allows (0 when there is none).
func badCharLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line
		case r == '\n':
			line++
		case r == '\t' || r == '\r' || r == 0x85 || r == 0xFEFF:
		case r < 0x20 || (r >= 0x7F && r < 0xA0) || (r >= 0xD800 && r < 0xE000) || r == 0xFFFE || r == 0xFFFF:
			return line
		}
		i += size
	}
	return 0
}

// yamlErrorLine splits a yaml.v3 syntax error of data into the file's (1-based) line and the
// message; the line is 0 when the error names none.
func yamlErrorLine(data []byte, err error) (int, string) {
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	switch {
	case slices.Contains(parserProblems, msg):
		line++
	case line == 0 && slices.Contains(readerProblems, msg):
		line = badCharLine(data)
	case line == 0 && !slices.ContainsFunc(decoderProblems, func(p string) bool { return strings.HasPrefix(msg, p) }):
		line = 1 // a scanner error on the first line
	}
	if m := yamlAnchorRE.FindStringSubmatch(err.Error()); m != nil {
		line = aliasLine(data, m[1])
	}
	return line, msg
}

// aliasLine is the line of the first use of alias *name in data (0 when not found).
func aliasLine(data []byte, name string) int {
	re := regexp.MustCompile(`\*` + regexp.QuoteMeta(name) + `(?:[\s,\]}]|$)`)
	loc := re.FindIndex(data)
	if loc == nil {
		return 0
	}
	return bytes.Count(data[:loc[0]], []byte("\n")) + 1
}
