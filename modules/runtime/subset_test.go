package runtime

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// tarNames lists the regular files of a tar.
func tarNames(t *testing.T, p string) []string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	return names
}

// A subset holds the images asked for, every platform of a multi-arch one, and no blob of the
// others; it is written once and reused; an image the archive lacks is an error.
func TestSubsetArchive(t *testing.T) {
	oci := ociTar(t)
	flannel, err := subsetArchive(oci, []string{"docker.io/flannel/flannel:v1"})
	if err != nil {
		t.Fatal(err)
	}
	if refs, err := ArchiveRefs(flannel); err != nil || !slices.Equal(refs, []string{"docker.io/flannel/flannel:v1"}) {
		t.Errorf("flannel subset names %v, %v", refs, err)
	}
	names := tarNames(t, flannel)
	// the index, the two platforms' manifests, and each one's config and layer
	blobs := 0
	for _, n := range names {
		if strings.HasPrefix(n, "blobs/") {
			blobs++
		}
	}
	if blobs != 7 || !slices.Contains(names, "oci-layout") || !slices.Contains(names, "index.json") {
		t.Errorf("flannel subset holds %v", names)
	}
	pause, err := subsetArchive(oci, []string{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10.1"})
	if err != nil {
		t.Fatal(err)
	}
	if refs, _ := ArchiveRefs(pause); !slices.Equal(refs, []string{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10.1"}) {
		t.Errorf("pause subset names %v", refs)
	}
	if n := len(tarNames(t, pause)); n != 5 { // oci-layout, index.json, manifest, config, layer
		t.Errorf("pause subset: %d files: %v", n, tarNames(t, pause))
	}
	// the docker conversion reads a subset like the whole archive
	if err := DockerArchive(pause, pause+".docker", "amd64"); err != nil {
		t.Errorf("docker archive of the subset: %v", err)
	}

	// asked again (in another order): the same file, not rewritten
	st, _ := os.Stat(pause)
	time.Sleep(10 * time.Millisecond)
	again, err := subsetArchive(oci, []string{"registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10"})
	if st2, _ := os.Stat(again); err != nil || again != pause || !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("asked again: %s %v (rewritten: %v)", again, err, !st2.ModTime().Equal(st.ModTime()))
	}
	if _, err := subsetArchive(oci, []string{"docker.io/library/nope:1"}); err == nil || !strings.Contains(err.Error(), "docker.io/library/nope:1 is not in it") {
		t.Errorf("an image the archive lacks: %v", err)
	}
}
