package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations naming an image in an OCI layout (kk's bundles set both).
const (
	annotationRefName    = "org.opencontainers.image.ref.name"
	annotationContainerd = "io.containerd.image.name"
)

// Rewrite maps an upstream image reference to its name in the private registry, like
// KubeKey: <registry>/<namespaceOverride, or the image's own namespace>/<name>:<tag>, where
// registry is HOST[:PORT][/PREFIX] and the namespace is the repository path without its last
// element ("" for registry.k8s.io/pause, "library" for docker.io/library/nginx):
//
//	registry.k8s.io/kube-apiserver:v1.34.4, dockerhub.kubekey.local, ""        -> dockerhub.kubekey.local/kube-apiserver:v1.34.4
//	docker.io/flannel/flannel:v0.28.1, r.local:5000, "kubesphere"              -> r.local:5000/kubesphere/flannel:v0.28.1
//	registry.k8s.io/coredns/coredns:v1.12.0, r.local/prefix, ""                -> r.local/prefix/coredns/coredns:v1.12.0
//
// A digest reference keeps its digest.
func Rewrite(ref, registry, namespaceOverride string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	repo := r.Context().RepositoryStr()
	ns, base := "", repo
	if i := strings.LastIndex(repo, "/"); i >= 0 {
		ns, base = repo[:i], repo[i+1:]
	}
	if o := strings.Trim(namespaceOverride, "/"); o != "" {
		ns = o
	}
	parts := []string{strings.TrimRight(registry, "/")}
	if ns != "" {
		parts = append(parts, ns)
	}
	out := strings.Join(append(parts, base), "/")
	switch r := r.(type) {
	case name.Digest:
		return out + "@" + r.DigestStr(), nil
	case name.Tag:
		return out + ":" + r.TagStr(), nil
	}
	return out, nil
}

// PushOptions configure Push.
type PushOptions struct {
	// Layout is the OCI image layout to push (an imported bundle's Images()).
	Layout string
	// Registry is where to push: HOST[:PORT][/PREFIX] (required).
	Registry string
	// NamespaceOverride replaces every image's namespace (see Rewrite).
	NamespaceOverride string
	// CA is a PEM CA trusted besides the system pool (kk's registry CA); nil: the system pool.
	CA []byte
	// Username and Password authenticate to the registry ("" anonymous).
	Username, Password string
	// SkipTLSVerify turns off certificate checks; PlainHTTP talks HTTP instead of HTTPS.
	SkipTLSVerify, PlainHTTP bool
	// DialAddress, when set, is the IP the registry's host is reached on instead of
	// resolving it (the registry host's address, for a domain the kk machine cannot resolve).
	// The port stays the registry's; TLS still checks the certificate against the name.
	DialAddress string
	// Concurrency is the number of images pushed at once; <= 0 means 4.
	Concurrency int
	// Transport replaces the HTTP transport built from the options above (tests).
	Transport http.RoundTripper
	// Log gets one line per image; nil discards them.
	Log io.Writer
}

// Pushed is one image pushed.
type Pushed struct {
	Source string // upstream reference, as the layout names it
	Target string // where it was pushed
	Arches []string
	Digest string // of what was pushed under Target (an index when several arches)
}

// Push pushes every image of the layout to the registry under its Rewrite name, several at
// once; blobs and manifests the registry already has are not uploaded again (go-containerregistry
// asks with HEAD first). An image with several arches in the layout is pushed as an index.
// A registry that cannot be reached is reported naming it, before anything is pushed.
func Push(ctx context.Context, o PushOptions) ([]Pushed, error) {
	if o.Registry == "" {
		return nil, fmt.Errorf("push: no registry")
	}
	hostport, _, _ := strings.Cut(o.Registry, "/")
	reg, err := registryName(hostport, o.PlainHTTP)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", o.Registry, err)
	}
	groups, err := readLayout(o.Layout)
	if err != nil {
		return nil, err
	}
	tr := o.Transport
	if tr == nil {
		if tr, err = o.transport(); err != nil {
			return nil, err
		}
	}
	if err := ping(ctx, tr, reg, o); err != nil {
		return nil, err
	}
	auth := authn.Anonymous
	if o.Username != "" {
		auth = &authn.Basic{Username: o.Username, Password: o.Password}
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr), remote.WithAuth(auth), remote.WithJobs(4)}

	n := o.Concurrency
	if n <= 0 {
		n = 4
	}
	sem := make(chan struct{}, n)
	var mu sync.Mutex
	var errs []error
	out := make([]Pushed, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			p, err := pushOne(g, o, ropts)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out[i] = p
			if o.Log != nil {
				fmt.Fprintf(o.Log, "pushed %s -> %s (%s, %s)\n", p.Source, p.Target, strings.Join(p.Arches, ","), shortDigest(p.Digest))
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func registryName(hostport string, plain bool) (name.Registry, error) {
	if plain {
		return name.NewRegistry(hostport, name.Insecure)
	}
	return name.NewRegistry(hostport)
}

// transport trusts the system pool plus o.CA and dials o.DialAddress when set.
func (o PushOptions) transport() (http.RoundTripper, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if len(o.CA) > 0 && !pool.AppendCertsFromPEM(o.CA) {
		return nil, fmt.Errorf("registry %s: the CA given is not a PEM certificate", o.Registry)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, InsecureSkipVerify: o.SkipTLSVerify} //nolint:gosec // the user asked for it
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if o.DialAddress != "" {
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, net.JoinHostPort(o.DialAddress, port))
		}
	} else {
		tr.DialContext = d.DialContext
	}
	return tr, nil
}

// ping asks GET /v2/ once: any HTTP answer (200, 401) means the registry is there.
func ping(ctx context.Context, tr http.RoundTripper, reg name.Registry, o PushOptions) error {
	where := reg.RegistryStr()
	if o.DialAddress != "" {
		where += " (dialed at " + o.DialAddress + ")"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// not reg.Scheme(): go-containerregistry says http for RFC 1918 addresses (and tries https first)
	scheme := "https"
	if o.PlainHTTP {
		scheme = "http"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("registry %s is unreachable: %w", where, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized && o.Username == "" &&
		strings.HasPrefix(strings.ToLower(resp.Header.Get("WWW-Authenticate")), "basic") {
		return fmt.Errorf("registry %s requires a username and password: add them to spec.registry.auths[%q]", where, reg.RegistryStr())
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("registry %s answered GET /v2/ with %s: not a container registry?", where, resp.Status)
	}
	return nil
}

// imageGroup is one reference of the layout with its manifests (one per arch).
type imageGroup struct {
	ref   string
	descs []v1.Descriptor
	index v1.ImageIndex
}

func readLayout(dir string) ([]imageGroup, error) {
	if dir == "" {
		return nil, fmt.Errorf("push: no image layout")
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", dir, err)
	}
	byRef := map[string]*imageGroup{}
	var refs []string
	for _, d := range im.Manifests {
		ref := d.Annotations[annotationRefName]
		if c := d.Annotations[annotationContainerd]; c != "" {
			ref = c
		}
		if _, err := name.ParseReference(ref); err != nil || ref == "" {
			// not a full reference (a bare tag written by another tool): nothing to name it by
			continue
		}
		g := byRef[ref]
		if g == nil {
			g = &imageGroup{ref: ref, index: idx}
			byRef[ref] = g
			refs = append(refs, ref)
		}
		g.descs = append(g.descs, d)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("image layout %s names no image (no %s annotation)", dir, annotationRefName)
	}
	sort.Strings(refs)
	out := make([]imageGroup, 0, len(refs))
	for _, r := range refs {
		out = append(out, *byRef[r])
	}
	return out, nil
}

func pushOne(g imageGroup, o PushOptions, ropts []remote.Option) (Pushed, error) {
	target, err := Rewrite(g.ref, o.Registry, o.NamespaceOverride)
	if err != nil {
		return Pushed{}, err
	}
	var nopts []name.Option
	if o.PlainHTTP {
		nopts = append(nopts, name.Insecure)
	}
	dst, err := name.ParseReference(target, nopts...)
	if err != nil {
		return Pushed{}, fmt.Errorf("image %s: target %q: %w", g.ref, target, err)
	}
	p := Pushed{Source: g.ref, Target: dst.String()}
	fail := func(err error) (Pushed, error) {
		return Pushed{}, fmt.Errorf("push %s to %s: %w", g.ref, dst, err)
	}
	if len(g.descs) == 1 && g.descs[0].MediaType.IsIndex() {
		ii, err := g.index.ImageIndex(g.descs[0].Digest)
		if err != nil {
			return fail(err)
		}
		if err := remote.WriteIndex(dst, ii, ropts...); err != nil {
			return fail(err)
		}
		p.Digest, p.Arches = g.descs[0].Digest.String(), []string{"index"}
		return p, nil
	}
	var adds []mutate.IndexAddendum
	for _, d := range g.descs {
		img, err := g.index.Image(d.Digest)
		if err != nil {
			return fail(err)
		}
		plat := d.Platform
		if plat == nil {
			cf, err := img.ConfigFile()
			if err != nil {
				return fail(err)
			}
			plat = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		}
		p.Arches = append(p.Arches, plat.Architecture)
		dd := v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, Platform: plat}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: dd})
	}
	if len(adds) == 1 {
		if err := remote.Write(dst, adds[0].Add.(v1.Image), ropts...); err != nil {
			return fail(err)
		}
		p.Digest = g.descs[0].Digest.String()
		return p, nil
	}
	mt := types.OCIImageIndex
	if g.descs[0].MediaType == types.DockerManifestSchema2 {
		mt = types.DockerManifestList
	}
	ii := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), mt)
	if err := remote.WriteIndex(dst, ii, ropts...); err != nil {
		return fail(err)
	}
	d, err := ii.Digest()
	if err != nil {
		return fail(err)
	}
	p.Digest = d.String()
	return p, nil
}
