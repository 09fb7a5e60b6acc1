package upstream

import (
	"strings"
	"testing"

	"github.com/kk-project/kk/e2e/mirror"
)

// TestMirrorReleases: kk's docker and cri-dockerd releases in a Manifest become the local
// mirror's; a Manifest without them is left as it is.
func TestMirrorReleases(t *testing.T) {
	spec := mirror.DefaultSpec()
	man := "spec:\n  components:\n    containerRuntimes:\n      - type: docker\n        version: 28.3.3\n    cri-dockerd:\n      version: v0.3.19\n    etcd:\n      version: v3.6.5\n"
	got, edits := MirrorReleases(man)
	if !strings.Contains(got, "- type: docker\n        version: "+spec.Docker+"\n") || !strings.Contains(got, "cri-dockerd:\n      version: "+spec.CriDockerd+"\n") ||
		!strings.Contains(got, "version: v3.6.5") || len(edits) != 2 {
		t.Errorf("edits %q:\n%s", edits, got)
	}
	if again, edits := MirrorReleases(got); again != got || len(edits) != 0 {
		t.Errorf("again: %q\n%s", edits, again)
	}
	plain := "spec:\n  components:\n    containerRuntimes:\n      - type: containerd\n        version: v2.2.9\n"
	if got, edits := MirrorReleases(plain); got != plain || len(edits) != 0 {
		t.Errorf("containerd: %q\n%s", edits, got)
	}
}
