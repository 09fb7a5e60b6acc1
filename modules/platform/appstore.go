package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/kk-project/kk/artifacts/charts"
)

// appStore is the app store's name in the catalogue.
const appStore = "app-store"

// Where the app store (templates/files/platform/app-store.yaml) serves its chart repository:
// http://kk-app-store.kubesphere-system.svc:8080, index.yaml at its root.
const (
	AppStoreNamespace = "kubesphere-system"
	AppStoreService   = "kk-app-store"
	AppStorePortName  = "http"
	AppStorePort      = 8080
)

// AppStoreURL is the app store's repository inside the cluster (helm repo add NAME URL).
func AppStoreURL() string {
	return fmt.Sprintf("http://%s.%s.svc:%d", AppStoreService, AppStoreNamespace, AppStorePort)
}

// RepoAPI is ChartMuseum's HTTP API as kk reaches it: GET and POST of a path under its root
// ("api/charts"), answering the HTTP status and body. An answer that is not 2xx is not an
// error; err is for a request that got no answer.
type RepoAPI interface {
	Get(ctx context.Context, path string) (status int, body []byte, err error)
	Post(ctx context.Context, path string, body []byte) (status int, answer []byte, err error)
}

// ProxyRepo reaches the app store through the API server's service proxy
// (/api/v1/namespaces/kubesphere-system/services/http:kk-app-store:http/proxy/...): kk runs
// outside the cluster, where the Service's address is not routed, and needs no port-forward
// or node of its own for it. ChartMuseum's answers come back as they are.
func ProxyRepo(cfg *rest.Config) (RepoAPI, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, err
	}
	u := base.JoinPath("api/v1/namespaces", AppStoreNamespace, "services", "http:"+AppStoreService+":"+AppStorePortName, "proxy")
	return httpRepo{base: u.String(), client: hc}, nil
}

// HTTPRepo reaches a ChartMuseum at base (http://127.0.0.1:8080) directly.
func HTTPRepo(base string, client *http.Client) RepoAPI {
	if client == nil {
		client = http.DefaultClient
	}
	return httpRepo{base: base, client: client}
}

type httpRepo struct {
	base   string
	client *http.Client
}

// requestTimeout bounds one call to the app store.
const requestTimeout = time.Minute

func (h httpRepo) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(h.base, "/")+"/"+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, data, err
}

func (h httpRepo) Get(ctx context.Context, path string) (int, []byte, error) {
	return h.do(ctx, http.MethodGet, path, nil)
}

func (h httpRepo) Post(ctx context.Context, path string, body []byte) (int, []byte, error) {
	return h.do(ctx, http.MethodPost, path, body)
}

// ChartState is what the app store holds of a chart version.
type ChartState int

const (
	// ChartMissing: the repository has no such version.
	ChartMissing ChartState = iota
	// ChartPresent: it has the version, from the same archive (the same digest).
	ChartPresent
	// ChartDiffers: it has the version from another archive (a chart changed without a new
	// version, or uploaded by hand); kk keeps the repository's, as ChartMuseum refuses to
	// replace a version.
	ChartDiffers
)

// chartPath is ChartMuseum's API path of one chart version.
func chartPath(c charts.Chart) string {
	return "api/charts/" + url.PathEscape(c.Name) + "/" + url.PathEscape(c.Version)
}

// StateOf asks the app store for a's chart version (GET /api/charts/NAME/VERSION).
func StateOf(ctx context.Context, api RepoAPI, a charts.Archive) (ChartState, error) {
	code, body, err := api.Get(ctx, chartPath(a.Chart))
	if err != nil {
		return ChartMissing, fmt.Errorf("app store: chart %s: %w", a.Chart, err)
	}
	switch code {
	case http.StatusNotFound:
		return ChartMissing, nil
	case http.StatusOK:
	default:
		return ChartMissing, fmt.Errorf("app store: chart %s: %s", a.Chart, answer(code, body))
	}
	var v struct {
		Name, Version, Digest string
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Name != a.Name || v.Version != a.Version {
		return ChartMissing, fmt.Errorf("app store: chart %s: not a chart version: %s", a.Chart, answer(code, body))
	}
	if v.Digest != a.SHA256 {
		return ChartDiffers, nil
	}
	return ChartPresent, nil
}

// Upload puts each archive the app store lacks into it (POST /api/charts, the archive as the
// body) and returns what it uploaded and what it kept because the repository holds the same
// version from another archive. A version already there is not uploaded again, so a second run
// uploads nothing.
func Upload(ctx context.Context, api RepoAPI, archives []charts.Archive, read func(string) ([]byte, error)) (uploaded, kept []charts.Chart, err error) {
	for _, a := range archives {
		st, err := StateOf(ctx, api, a)
		if err != nil {
			return uploaded, kept, err
		}
		switch st {
		case ChartPresent:
			continue
		case ChartDiffers:
			kept = append(kept, a.Chart)
			continue
		}
		data, err := read(a.Path)
		if err != nil {
			return uploaded, kept, fmt.Errorf("app store: chart %s: %w", a.Chart, err)
		}
		code, body, err := api.Post(ctx, "api/charts", data)
		switch {
		case err != nil:
			return uploaded, kept, fmt.Errorf("app store: uploading chart %s: %w", a.Chart, err)
		case code == http.StatusConflict:
			// uploaded since it was looked up (another run): there now, as wanted
			continue
		case code/100 != 2:
			return uploaded, kept, fmt.Errorf("app store: uploading chart %s: %s", a.Chart, answer(code, body))
		}
		uploaded = append(uploaded, a.Chart)
	}
	return uploaded, kept, nil
}

// Missing lists the archives whose chart version the app store does not hold.
func Missing(ctx context.Context, api RepoAPI, archives []charts.Archive) ([]charts.Chart, error) {
	var out []charts.Chart
	for _, a := range archives {
		st, err := StateOf(ctx, api, a)
		if err != nil {
			return nil, err
		}
		if st == ChartMissing {
			out = append(out, a.Chart)
		}
	}
	return out, nil
}

// uploadWhenServing uploads archives, retrying for up to timeout while the API server's proxy
// cannot reach the app store yet (its Service's endpoints lag the pod's readiness).
func uploadWhenServing(ctx context.Context, api RepoAPI, archives []charts.Archive, read func(string) ([]byte, error),
	timeout time.Duration) (uploaded, kept []charts.Chart, err error) {
	var last error
	werr := wait.PollUntilContextTimeout(ctx, 2*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		var up []charts.Chart
		up, kept, last = Upload(ctx, api, archives, read)
		uploaded = append(uploaded, up...)
		return last == nil, nil
	})
	if last != nil {
		return uploaded, kept, last
	}
	if werr != nil && !errors.Is(werr, context.DeadlineExceeded) {
		return uploaded, kept, werr
	}
	return uploaded, kept, nil
}

// answer describes a non-2xx answer: its status and the start of its body.
func answer(code int, body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return fmt.Sprintf("HTTP %d", code)
	}
	return fmt.Sprintf("HTTP %d: %s", code, s)
}

func chartList(cs []charts.Chart) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.String())
	}
	return strings.Join(s, ", ")
}
