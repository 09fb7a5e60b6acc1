package runtime

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A host that lacks only some of a bundle's images (an upgrade's new control-plane images, a
// re-run after a failure) gets an archive of those alone: the upload is what the host needs,
// not the whole bundle. Each subset is written once next to the bundle's archive, named by
// its images, and shared by every host that lacks the same ones.

// maxManifestBytes bounds what is read as a manifest, an index or a config (here and in
// DockerArchive).
const maxManifestBytes = 4 << 20

var subsetLocks sync.Map // subset path -> *sync.Mutex

// subsetArchive returns a tar of an OCI image layout holding only the images refs of the
// layout tar oci (every platform of each that oci holds), written into oci's folder unless an
// earlier call wrote it after oci last changed. An image refs names that oci's index does not
// is an error.
func subsetArchive(oci string, refs []string) (string, error) {
	refs = slices.Clone(refs)
	slices.Sort(refs)
	sum := sha256.Sum256([]byte(strings.Join(refs, "\n")))
	out := filepath.Join(filepath.Dir(oci), ".kk-images-"+hex.EncodeToString(sum[:8])+".tar")
	mu, _ := subsetLocks.LoadOrStore(out, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	in, err := os.Stat(oci)
	if err != nil {
		return "", fmt.Errorf("image archive: %w", err)
	}
	if st, err := os.Stat(out); err == nil && st.Size() > 0 && !st.ModTime().Before(in.ModTime()) {
		return out, nil
	}
	if err := writeSubset(oci, out, refs); err != nil {
		return "", fmt.Errorf("image archive %s, the part of %s: %w", oci, strings.Join(refs, ", "), err)
	}
	return out, nil
}

// writeSubset reads oci twice: first its index and small blobs (manifests, indexes, configs)
// to find every blob the images need, then it copies those blobs into out.
func writeSubset(oci, out string, refs []string) error {
	index, small, present, err := scanLayout(oci)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, r := range refs {
		want[r] = true
	}
	sub := *index
	sub.Manifests = nil
	need := map[string]bool{}
	var walk func(d v1.Hash, depth int) error
	walk = func(d v1.Hash, depth int) error {
		need[d.String()] = true
		b, ok := small[d.String()]
		if !ok || depth > 3 {
			return fmt.Errorf("blob %s is missing or too large for a manifest", d)
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		if len(idx.Manifests) > 0 {
			for _, c := range idx.Manifests {
				if present[c.Digest.String()] { // a platform the bundle left out is not in it
					if err := walk(c.Digest, depth+1); err != nil {
						return err
					}
				}
			}
			return nil
		}
		m, err := v1.ParseManifest(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		for _, l := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if !present[l.Digest.String()] {
				return fmt.Errorf("%s: blob %s is not in the archive", d, l.Digest)
			}
			need[l.Digest.String()] = true
		}
		return nil
	}
	found := map[string]bool{}
	for _, d := range index.Manifests {
		r := indexRef(d.Annotations)
		if !want[r] {
			continue
		}
		found[r] = true
		sub.Manifests = append(sub.Manifests, d)
		if err := walk(d.Digest, 0); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
	}
	for _, r := range refs {
		if !found[r] {
			return fmt.Errorf("%s is not in it", r)
		}
	}
	idxJSON, err := json.Marshal(sub)
	if err != nil {
		return err
	}
	return copyBlobs(oci, out, idxJSON, need)
}

// scanLayout reads the layout tar's index, its blobs up to maxManifestBytes and the names of
// all its blobs ("sha256:HEX").
func scanLayout(oci string) (*v1.IndexManifest, map[string][]byte, map[string]bool, error) {
	f, err := os.Open(oci)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	var index *v1.IndexManifest
	small, present := map[string][]byte{}, map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, nil, err
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		switch d, ok := blobDigest(name); {
		case name == "index.json":
			if index, err = v1.ParseIndexManifest(tr); err != nil {
				return nil, nil, nil, fmt.Errorf("index.json: %w", err)
			}
		case ok && h.Typeflag == tar.TypeReg:
			present[d] = true
			if h.Size <= maxManifestBytes {
				b, err := io.ReadAll(tr)
				if err != nil {
					return nil, nil, nil, err
				}
				small[d] = b
			}
		}
	}
	if index == nil {
		return nil, nil, nil, errors.New("no index.json (not a tar of an OCI image layout)")
	}
	return index, small, present, nil
}

// copyBlobs writes out: oci's oci-layout file, the index idxJSON and the blobs of need.
func copyBlobs(oci, out string, idxJSON []byte, need map[string]bool) error {
	f, err := os.Open(oci)
	if err != nil {
		return err
	}
	defer f.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), ".kk-images-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	tw := tar.NewWriter(tmp)
	if err := tw.WriteHeader(&tar.Header{Name: "index.json", Mode: 0o644, Size: int64(len(idxJSON)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(idxJSON); err != nil {
		return err
	}
	tr := tar.NewReader(f)
	copied := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		d, isBlob := blobDigest(name)
		keep := name == "oci-layout" || h.Typeflag == tar.TypeDir && (name == "blobs" || strings.HasPrefix(name, "blobs/")) ||
			isBlob && need[d] && !copied[d]
		if !keep {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
		if isBlob {
			copied[d] = true
		}
	}
	if len(copied) != len(need) {
		return fmt.Errorf("%d of the %d blobs needed were copied", len(copied), len(need))
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
