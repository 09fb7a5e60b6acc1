package bundle

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// Member names and the format tag of the index.
const (
	IndexName    = "kk-bundle.json"
	SumsName     = "SHA256SUMS"
	ManifestName = "manifest.yaml"
	FilesDir     = "files"
	ImagesDir    = "images"
	ChartsDir    = "charts"
	FormatV1     = "kk-bundle/v1"
)

// Index is a bundle's table of contents, its first member.
type Index struct {
	Format    string    `json:"format"`
	KKVersion string    `json:"kkVersion"`
	Created   time.Time `json:"created"`
	// Name is the Manifest's metadata.name.
	Name       string           `json:"name,omitempty"`
	Arches     []string         `json:"arches"`
	Components []ComponentEntry `json:"components"`
	Images     []ImageEntry     `json:"images"`
	// Charts are the app store's Helm charts (the Manifest's spec.charts), each packaged.
	Charts []ChartEntry `json:"charts,omitempty"`
	// Files lists every member but the index itself.
	Files []FileEntry `json:"files"`
}

// ComponentEntry is one downloaded component in the bundle.
type ComponentEntry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	// Path is the member, files/<cache path>.
	Path   string `json:"path"`
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// ImageEntry is one image (for one arch) in the bundle's OCI layout.
type ImageEntry struct {
	Ref    string `json:"ref"`
	Arch   string `json:"arch"`
	Digest string `json:"digest"` // of the image manifest
	// Size is the manifest, config and layers together (compressed).
	Size int64 `json:"size"`
}

// ChartEntry is one chart archive in the bundle: charts/NAME-VERSION.tgz.
type ChartEntry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

// FileEntry is one member.
type FileEntry struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Size is the bytes of every member together.
func (ix *Index) Size() int64 {
	var n int64
	for _, f := range ix.Files {
		n += f.Size
	}
	return n
}

// HasArch says whether the bundle carries arch.
func (ix *Index) HasArch(arch string) bool {
	for _, a := range ix.Arches {
		if a == arch {
			return true
		}
	}
	return false
}

// file returns the entry of member p.
func (ix *Index) file(p string) (FileEntry, bool) {
	for _, f := range ix.Files {
		if f.Path == p {
			return f, true
		}
	}
	return FileEntry{}, false
}

// parseIndex decodes and checks an index read from source.
func parseIndex(source string, data []byte) (*Index, error) {
	var ix Index
	if err := json.Unmarshal(data, &ix); err != nil {
		return nil, fmt.Errorf("%s: %s is not valid: %w", source, IndexName, err)
	}
	if ix.Format != FormatV1 {
		return nil, fmt.Errorf("%s: %s has format %q: this kk reads %q", source, IndexName, ix.Format, FormatV1)
	}
	seen := map[string]bool{}
	for _, f := range ix.Files {
		if !validMember(f.Path) {
			return nil, fmt.Errorf("%s: %s lists an unsafe member path %q", source, IndexName, f.Path)
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("%s: %s lists %s twice", source, IndexName, f.Path)
		}
		seen[f.Path] = true
	}
	for _, c := range ix.Charts {
		if f, ok := ix.file(c.Path); !ok || !strings.HasPrefix(c.Path, ChartsDir+"/") || f.SHA256 != c.SHA256 || f.Size != c.Size {
			return nil, fmt.Errorf("%s: %s lists chart %s %s at %q, which is not one of its members with that checksum", source, IndexName, c.Name, c.Version, c.Path)
		}
	}
	return &ix, nil
}

// validMember accepts clean, relative, slash-separated paths that stay inside the bundle.
func validMember(p string) bool {
	return p != "" && p != IndexName && !strings.HasPrefix(p, "/") && path.Clean(p) == p &&
		p != ".." && !strings.HasPrefix(p, "../") && !strings.Contains(p, "\\")
}

// sums renders entries in sha256sum(1) format, sorted by path.
func sums(files []FileEntry) []byte {
	sorted := append([]FileEntry(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var b strings.Builder
	for _, f := range sorted {
		b.WriteString(f.SHA256 + "  " + f.Path + "\n")
	}
	return []byte(b.String())
}
