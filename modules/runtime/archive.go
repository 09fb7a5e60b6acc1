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
			r := m.Annotations["io.containerd.image.name"]
			if r == "" {
				if n := m.Annotations["org.opencontainers.image.ref.name"]; len(n) > 0 && containsSlash(n) {
					r = n
				}
			}
			if r != "" && !seen[r] {
				seen[r] = true
				refs = append(refs, r)
			}
		}
		sort.Strings(refs)
		return refs, nil
	}
}

func containsSlash(s string) bool {
	for _, c := range s {
		if c == '/' {
			return true
		}
	}
	return false
}
