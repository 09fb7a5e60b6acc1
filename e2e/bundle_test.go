//go:build integration || e2e

package e2e

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/kk-project/kk/e2e/upstream"
)

// e2eDir keeps what the end-to-end tests reuse between runs: the download cache of kk
// artifact export and the bundles.
func e2eDir(t *testing.T) string {
	d := os.Getenv("KK_E2E_DIR")
	if d == "" {
		d = "/var/tmp/kk-e2e"
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

var (
	upOnce sync.Once
	up     upstream.Served
	upErr  error
	// exportMu runs one kk artifact export at a time: the TestCreateCluster tests run in
	// parallel and share the export's download cache and bundles.
	exportMu sync.Mutex
)

// serveUpstream serves the mirror and the images on loopback for the whole test binary.
func serveUpstream(t *testing.T) upstream.Served {
	t.Helper()
	upOnce.Do(func() { up, upErr = upstream.Serve(context.Background(), upstream.DefaultDirs()) })
	if upErr != nil {
		t.Fatal(upErr)
	}
	return up
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// exportBundle builds an offline bundle the way a user does, from the local upstream:
// `kk create manifest ARGS -f manifest-NAME.yaml` (ARGS: "-c CLUSTER-FILE" or
// "--with-kubernetes vX.Y.Z"), then `kk artifact export` of it. The bundle is kept under e2eDir
// as bundle-NAME.tar.gz (the download cache makes a second export cheap).
func exportBundle(t *testing.T, bin, name string, manifestArgs ...string) string {
	p, _ := exportBundleOut(t, bin, name, manifestArgs...)
	return p
}

// exportBundleOut is exportBundle that also returns kk's output.
func exportBundleOut(t *testing.T, bin, name string, manifestArgs ...string) (string, string) {
	t.Helper()
	s := serveUpstream(t)
	exportMu.Lock()
	defer exportMu.Unlock()
	var out strings.Builder
	p, err := upstream.Export(context.Background(), bin, s, e2eDir(t), name, manifestArgs, &out)
	t.Logf("%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	return p, out.String()
}
