//go:build integration

package mirror_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/kk-project/kk/e2e/mirror"
)

// TestSnapshotCRDsTemplateIsUpstream: kk's platform file of the snapshot CRDs is what
// `go run ./e2e/cmd/mirror snapshot-crds` makes from the client module of the spec's
// external-snapshotter release (through the Go module proxy): regenerate it when that release
// changes.
func TestSnapshotCRDsTemplateIsUpstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	want, err := mirror.SnapshotCRDsTemplate(ctx, mirror.DefaultSpec().CSISnapshotter)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../templates/files/platform/snapshot-crds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("templates/files/platform/snapshot-crds.yaml is not external-snapshotter %s's CRDs: run go run ./e2e/cmd/mirror snapshot-crds", mirror.DefaultSpec().CSISnapshotter)
	}
}
