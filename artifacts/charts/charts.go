// Package charts reads and packages the local Helm charts of the platform's app store
// (ClusterConfiguration spec.openpitrix.store.charts): a chart is an archive made by helm
// package (.tgz) or a chart directory, which Package makes an archive as helm package does
// (Helm's own loader and chartutil.Save). kk create manifest names each chart it finds, kk
// artifact export packs the archives into the bundle, and the platform phase uploads them into
// the app store's repository.
package charts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

// MaxArchive is the largest chart archive kk packs: ChartMuseum's default upload limit (and
// Helm's own limit on a chart archive), so that every packed chart can be uploaded.
const MaxArchive = 20 << 20

// Chart names a chart: its name and version (Chart.yaml's).
type Chart struct {
	Name    string
	Version string
}

func (c Chart) String() string { return c.Name + " " + c.Version }

// FileName is the archive helm package writes for c: NAME-VERSION.tgz.
func (c Chart) FileName() string { return c.Name + "-" + c.Version + ".tgz" }

// Archive is a packaged chart.
type Archive struct {
	Chart
	// Path is the .tgz file.
	Path   string
	SHA256 string
	Size   int64
}

// Inspect loads the chart at path, a .tgz archive or a chart directory, with Helm's loader
// (which validates Chart.yaml: a name, a SemVer version, an apiVersion) and names it.
func Inspect(path string) (Chart, error) {
	ch, _, err := load(path)
	if err != nil {
		return Chart{}, err
	}
	return Chart{Name: ch.Name(), Version: ch.Metadata.Version}, nil
}

// load reads the chart at path, and says whether it is a directory. Only a regular file or a
// directory is read (never a device or a pipe), an archive only up to MaxArchive.
func load(path string) (*chart.Chart, bool, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, false, fmt.Errorf("chart %s: %w", path, unwrap(err))
	}
	switch {
	case st.IsDir():
		ch, err := loader.LoadDir(path)
		if err != nil {
			return nil, true, fmt.Errorf("chart directory %s: %w", path, err)
		}
		return ch, true, nil
	case !st.Mode().IsRegular():
		return nil, false, fmt.Errorf("chart %s is neither a .tgz archive nor a chart directory", path)
	case st.Size() > MaxArchive:
		return nil, false, fmt.Errorf("chart %s is %d bytes, above the %d the app store accepts", path, st.Size(), MaxArchive)
	}
	ch, err := loader.LoadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("chart archive %s: %w", path, err)
	}
	return ch, false, nil
}

// Package returns the archive of the chart at src: src itself when it is an archive, else a
// NAME-VERSION.tgz that chartutil.Save writes into dir (as helm package does). The archive is
// checked to load, and its digest taken.
func Package(src, dir string) (Archive, error) {
	ch, isDir, err := load(src)
	if err != nil {
		return Archive{}, err
	}
	a := Archive{Chart: Chart{Name: ch.Name(), Version: ch.Metadata.Version}, Path: src}
	if isDir {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return Archive{}, err
		}
		if a.Path, err = chartutil.Save(ch, dir); err != nil {
			return Archive{}, fmt.Errorf("chart directory %s: packaging: %w", src, err)
		}
		if _, _, err := load(a.Path); err != nil {
			return Archive{}, fmt.Errorf("chart directory %s: its package: %w", src, err)
		}
	}
	if a.SHA256, a.Size, err = Digest(a.Path); err != nil {
		return Archive{}, err
	}
	return a, nil
}

// Digest is the SHA-256 (hex) and size of the file at path: ChartMuseum's index.yaml lists a
// chart version's digest in the same form.
func Digest(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// unwrap drops the path an *os.PathError repeats.
func unwrap(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
