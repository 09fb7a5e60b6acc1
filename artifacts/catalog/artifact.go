// Package catalog is kk's one component catalogue: it turns a Component (name, version, arch)
// into an Artifact: where to download it, where it lives in the cache, how it is packed and
// where its published checksum is. kk compiles in no checksum table: a checksum comes from the
// file upstream publishes beside the download, or is pinned by the user (Manifest).
package catalog

import "fmt"

// Component names one downloadable thing, e.g. {"kubeadm", "v1.34.1", "amd64"}.
type Component struct {
	Name    string
	Version string
	Arch    string // Go/Kubernetes arch name: amd64, arm64, ...
}

// String is "kubeadm v1.34.1 linux/amd64", the form errors use.
func (c Component) String() string {
	return fmt.Sprintf("%s %s linux/%s", c.Name, c.Version, c.Arch)
}

// Artifact is a resolved Component.
type Artifact struct {
	Component Component // as resolved: Version in its canonical form
	URL       string    // download URL
	File      string    // cache-relative path, slash-separated: <name>/<version>/<arch>/<file>
	Layout    Layout
	Checksum  ChecksumSource
}

// Format is how an artifact is packed.
type Format string

const (
	// Raw is a single file (a binary) used as downloaded.
	Raw Format = "raw"
	// TarGz is a gzip-compressed tar archive whose Members are extracted.
	TarGz Format = "tar.gz"
)

// Layout says how to use the downloaded file.
type Layout struct {
	Format Format
	// Executable: a Raw file gets mode 0755 in the cache.
	Executable bool
	// Members of a TarGz archive to extract, each into the archive's cache directory under
	// its base name.
	Members []Member
}

// Member selects files in an archive.
type Member struct {
	// Path in the archive, a path.Match pattern ("bin/*"); a leading "./" of archive names is
	// ignored. Only regular files are extracted.
	Path string
	// Optional members may be absent (e.g. etcdutl, only shipped since etcd v3.5); a required
	// one that matches nothing is an error.
	Optional bool
}

// ChecksumSource says where an artifact's SHA-256 comes from. Pinned wins over URL.
type ChecksumSource struct {
	// Pinned is a hex SHA-256 given by the user (a Manifest); no checksum file is fetched.
	Pinned string
	// URL of the checksum file upstream publishes, from the same base as the artifact;
	// empty when upstream publishes none (docker static, cri-dockerd): the user must pin one.
	URL string
	// Entry is the file name to look up in a checksum file that lists several files
	// ("HASH  NAME" lines, as in SHA256SUMS); a file holding a single bare hash needs none.
	Entry string
}
