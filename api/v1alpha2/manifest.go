package v1alpha2

import (
	"errors"
	"io/fs"
	"os"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// LoadManifest reads the Manifest file at path. See ParseManifest.
func LoadManifest(path string) (*Manifest, Warnings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, nil, ErrorList{{File: path, Msg: "cannot read the file: " + err.Error()}}
	}
	return ParseManifest(path, data)
}

// ParseManifest reads a Manifest file's content (KubeKey's kind: Manifest, with kk's
// extensions); source names it in messages (a path). Like Parse for Clusters it is strict:
// unknown fields, duplicate keys, values of the wrong type and invalid values are errors
// placed at FILE:LINE, all of them reported at once as an ErrorList. What kk reads but does
// not package (operating system ISOs, harbor, docker-registry, docker-compose) gives a
// warning. Defaults (runc for containerd, cri-dockerd for docker) are filled in, with a
// warning, from kk's version table.
//
// data may hold several YAML documents; exactly one must be a kind: Manifest.
func ParseManifest(source string, data []byte) (*Manifest, Warnings, error) {
	rep := &report{file: source, lines: lineIndex{}}
	doc := pickManifestDocument(data, rep)
	if doc == nil {
		return nil, rep.warns, rep.err()
	}
	var m Manifest
	if !decodeChecked(doc, rep, &m, ManifestKind) {
		return nil, rep.warns, rep.err()
	}
	m.Source = source
	(&manifestCheck{rep: rep, m: &m}).run()
	if err := rep.err(); err != nil {
		return nil, rep.warns, err
	}
	return &m, rep.warns, nil
}

// pickManifestDocument returns the root mapping of data's one kind: Manifest document, or
// nil (with the reason reported) when there is none.
func pickManifestDocument(data []byte, rep *report) *yaml.Node {
	roots, err := documents(data)
	if err != nil {
		line, msg := yamlErrorLine(data, err)
		rep.errorAt("", line, "invalid YAML: %s", msg)
		return nil
	}
	if len(roots) == 0 {
		rep.errorAt("", 0, "the file is empty: expected a kind: Manifest document")
		return nil
	}
	var found *yaml.Node
	for _, r := range roots {
		kind := describe(r)
		if r.Kind == yaml.MappingNode {
			_, k := scalarField(r, "kind")
			if k == ManifestKind {
				if found != nil {
					rep.errorAt("", r.Line, "a second kind: Manifest document: kk reads one manifest per file")
					continue
				}
				found = r
				continue
			}
			kind = strconv.Quote(k)
		}
		if len(roots) == 1 {
			reportNotAManifest(r, rep)
			return nil
		}
		rep.warns = append(rep.warns, formatLocated(rep.file, r.Line, "", "document of kind "+kind+" is not a Manifest and is ignored"))
	}
	if found == nil {
		rep.errorAt("", 0, "no kind: Manifest document in the file")
		return nil
	}
	checkAPIVersion(found, rep)
	return found
}

func reportNotAManifest(r *yaml.Node, rep *report) {
	if r.Kind != yaml.MappingNode {
		rep.errorAt("", r.Line, "expected a Manifest object (a mapping with apiVersion, kind, metadata and spec), got %s", describe(r))
		return
	}
	line, kind := scalarField(r, "kind")
	switch kind {
	case "":
		rep.errorAt("kind", max(line, r.Line), "kind is missing: expected kind: Manifest with apiVersion: %s", APIVersion)
	case Kind:
		rep.errorAt("kind", line, "this is a Cluster file, not a Manifest: write the Manifest a cluster needs with \"kk create manifest -c %s\"", rep.file)
	default:
		rep.errorAt("kind", line, "kind %q is not supported here: expected kind: Manifest with apiVersion: %s", kind, APIVersion)
	}
}
