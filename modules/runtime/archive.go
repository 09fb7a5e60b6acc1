package runtime

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ArchiveRefs lists the image references named in the index.json of an OCI layout tar
// (annotations io.containerd.image.name or org.opencontainers.image.ref.name when it is a
// full reference), sorted and without duplicates.
func ArchiveRefs(archive string) ([]string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("image archive: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("image archive %s: no index.json (not a tar of an OCI image layout)", archive)
		}
		if err != nil {
			return nil, fmt.Errorf("image archive %s: %w", archive, err)
		}
		if path.Clean(h.Name) != "index.json" {
			continue
		}
		// the annotations alone: no digest is read here
		var idx struct {
			Manifests []struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.NewDecoder(tr).Decode(&idx); err != nil {
			return nil, fmt.Errorf("image archive %s: index.json: %w", archive, err)
		}
		seen := map[string]bool{}
		var refs []string
		for _, m := range idx.Manifests {
			if r := indexRef(m.Annotations); r != "" && !seen[r] {
				seen[r] = true
				refs = append(refs, r)
			}
		}
		sort.Strings(refs)
		return refs, nil
	}
}

// indexRef is the image reference an index.json entry's annotations name:
// io.containerd.image.name, else org.opencontainers.image.ref.name when it is a full
// reference (has a slash; a bare tag names no image), else "".
func indexRef(annotations map[string]string) string {
	if r := annotations["io.containerd.image.name"]; r != "" {
		return r
	}
	if n := annotations["org.opencontainers.image.ref.name"]; strings.Contains(n, "/") {
		return n
	}
	return ""
}

// blobPath is a layout's path of the blob digest ("blobs/sha256/HEX").
func blobPath(d v1.Hash) string { return "blobs/" + d.Algorithm + "/" + d.Hex }

// blobDigest is "sha256:HEX" for a layout path "blobs/sha256/HEX".
func blobDigest(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "blobs/")
	if !ok {
		return "", false
	}
	alg, hex, ok := strings.Cut(rest, "/")
	return alg + ":" + hex, ok && !strings.Contains(hex, "/")
}
