package images

import (
	"slices"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/e2e/mirror"
)

// TestNodeCacheImage: the image is the one kk's nodelocaldns DaemonSet pulls (artifacts/versions),
// runs the mirror's stand-in as upstream's entrypoint, and carries Debian's iptables.
func TestNodeCacheImage(t *testing.T) {
	r := newRecipes("/mirror", "/bin")
	imgs, err := nodeCacheImages(r, mirror.DefaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 {
		t.Fatalf("%d images", len(imgs))
	}
	img := imgs[0]
	if want := versions.Latest().NodeLocalDNSImage(); img.Ref() != want {
		t.Errorf("image %s, kk deploys %s", img.Ref(), want)
	}
	if !slices.Equal(img.config.Entrypoint, []string{"/node-cache"}) || !slices.Contains(img.layers, r.iptables) {
		t.Errorf("entrypoint %v, iptables layer %v", img.config.Entrypoint, slices.Contains(img.layers, r.iptables))
	}
	if src := img.layers[len(img.layers)-1].files[0].src; src != "/mirror"+mirror.NodeCachePath(mirror.DefaultSpec().NodeCache) {
		t.Errorf("binary from %s", src)
	}
	s := mirror.DefaultSpec()
	s.CoreDNS = ""
	if _, err := nodeCacheImages(r, s); err == nil {
		t.Error("no CoreDNS to build node-cache from: want an error")
	}
	s.NodeCache = ""
	if imgs, err := nodeCacheImages(r, s); err != nil || len(imgs) != 0 {
		t.Errorf("no NodeCache: %v, %v", imgs, err)
	}
}
