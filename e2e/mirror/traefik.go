package mirror

import (
	"context"
	"fmt"
	"path/filepath"
)

// TraefikModule is the Go module Traefik v3 (the platform's cluster gateway) is built from.
const TraefikModule = "github.com/traefik/traefik/v3"

// TraefikPath is where the traefik binary is put: upstream's release archives are not laid
// out here, and kk deploys it only in its image (docker.io/library/traefik), so it lives
// under BinPath.
func TraefikPath(version string) string { return BinPath("traefik", version, "traefik") }

// Traefik's build needs three things the module proxy does not serve here, each replaced by
// the closest thing that is served, none of which the Ingress provider uses:
//
//   - github.com/traefik/traefik/dynamic/ext, a module inside traefik's repository that its
//     module zip leaves out (traefik's go.mod points at the folder): an extension point of two
//     empty structs, written here as they are in the open-source tree;
//   - containous/go-http-auth, traefik's fork of abbot/go-http-auth (basic and digest auth
//     middlewares), at a commit the proxy refuses: upstream's own newest commit serves, with
//     the one method traefik calls that only the fork has (RequireAuthStale: a digest
//     challenge that says the client's nonce was stale, RFC 7616's stale=true);
//   - six of lego's ACME DNS providers (edgedns, huaweicloud, oraclecloud, sakuracloud,
//     ucloud, yandexcloud), whose cloud SDKs the proxy refuses: each becomes a provider that
//     fails when asked for (an air-gapped cluster has no ACME DNS challenge).
const (
	traefikLegoModule  = "github.com/go-acme/lego/v5"
	traefikLegoVersion = "v5.4.1"
	traefikExtModule   = "github.com/traefik/traefik/dynamic/ext"
)

var traefikExtStub = map[string]string{
	"go.mod": "module " + traefikExtModule + "\n\ngo 1.24\n",
	"ext.go": `// Package ext is kk's e2e mirror stand-in for traefik's dynamic configuration extension
// point, which open-source traefik leaves empty.
package ext

// HTTP extends the dynamic HTTP configuration.
type HTTP struct{}

// Router extends an HTTP router.
type Router struct{}
`,
}

// traefikHTTPAuth is upstream abbot/go-http-auth's newest commit, for traefik's fork.
const (
	traefikHTTPAuthModule  = "github.com/abbot/go-http-auth"
	traefikHTTPAuthVersion = "v0.4.1-0.20220112235402-e1cee1c72f2f"
)

// traefikHTTPAuthStale adds RequireAuthStale to upstream's DigestAuth: RequireAuth's answer
// (a new nonce and the 401) with stale=true in the challenge.
var traefikHTTPAuthStale = packageStandIn{module: traefikHTTPAuthModule, version: traefikHTTPAuthVersion, dir: ".", add: true,
	files: map[string]string{"kk_stale.go": `package auth

// Added by kk's e2e mirror: traefik's fork of this module has it, upstream does not.

import (
	"fmt"
	"net/http"
	"time"
)

// RequireAuthStale answers as RequireAuth does, with a new nonce, and says stale=true: the
// client's credentials were right but its nonce is no longer valid, so it may retry without
// asking its user again.
func (da *DigestAuth) RequireAuthStale(w http.ResponseWriter, r *http.Request) {
	nonce := RandomKey()
	da.mutex.Lock()
	da.clients[nonce] = &digestClient{nc: 0, lastSeen: time.Now().UnixNano()}
	da.mutex.Unlock()
	h := da.Headers.V()
	w.Header().Set(contentType, h.UnauthContentType)
	w.Header().Set(h.Authenticate, fmt.Sprintf(` + "`" + `Digest realm="%s", nonce="%s", opaque="%s", algorithm=MD5, qop="auth", stale=true` + "`" + `,
		da.Realm, nonce, da.Opaque))
	w.WriteHeader(h.UnauthCode)
	w.Write([]byte(h.UnauthResponse))
}
`}}

// traefikLegoStandIns are the lego DNS providers whose SDKs the proxy refuses.
func traefikLegoStandIns() []packageStandIn {
	var out []packageStandIn
	for _, p := range []string{"edgedns", "huaweicloud", "oraclecloud", "sakuracloud", "ucloud", "yandexcloud"} {
		out = append(out, packageStandIn{module: traefikLegoModule, version: traefikLegoVersion, dir: "providers/dns/" + p,
			files: map[string]string{"standin.go": fmt.Sprintf(`// Package %[1]s is kk's e2e mirror stand-in for lego's %[1]s DNS provider, whose SDK the
// module proxy does not serve: asking for it fails.
package %[1]s

import (
	"context"
	"errors"
)

var errStandIn = errors.New("the %[1]s DNS provider is not built into this traefik (kk's e2e mirror)")

// DNSProvider is never made.
type DNSProvider struct{}

// NewDNSProvider fails.
func NewDNSProvider() (*DNSProvider, error) { return nil, errStandIn }

// Present fails.
func (d *DNSProvider) Present(ctx context.Context, domain, token, keyAuth string) error { return errStandIn }

// CleanUp fails.
func (d *DNSProvider) CleanUp(ctx context.Context, domain, token, keyAuth string) error { return errStandIn }
`, p)}})
	}
	return out
}

// traefikJob builds cmd/traefik static with the release in its version package, as upstream's
// release build does (goreleaser's version, without the "v").
func (b *builder) traefikJob(v string) job {
	p := TraefikPath(v)
	return job{component: "traefik", name: "traefik", version: v, recipe: recipeRev, outputs: withChecksum(p, p+".sha256"),
		build: func(ctx context.Context, stage string) error {
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "traefik-" + v, require: []string{TraefikModule + " " + v},
				replaceFrom: []string{TraefikModule + "@" + v},
				exclude:     []string{"github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible"},
				stubs:       map[string]map[string]string{traefikExtModule: traefikExtStub},
				standIns:    append(traefikLegoStandIns(), traefikHTTPAuthStale),
				pkgs:        []string{TraefikModule + "/cmd/traefik"},
				ldflags:     []string{"-X " + TraefikModule + "/pkg/version.Version=" + v[1:]},
				out:         bins}); err != nil {
				return err
			}
			if err := placeBinary(filepath.Join(bins, "traefik"), stage, p); err != nil {
				return err
			}
			return writeHexSum(stage, p, p+".sha256")
		}}
}
