package mirror

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Serve serves dir read-only over HTTP on addr (default "127.0.0.1:0", a
// free loopback port) until ctx is done or the server is shut down. It
// returns the running server and its base URL, e.g. "http://127.0.0.1:41235".
// Range requests, If-Modified-Since and HEAD work (http.ServeContent);
// directory listings and the mirror's dot-directories (.stamps, .build,
// .tmp) are not served.
func Serve(ctx context.Context, dir string, addr string) (*http.Server, string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, "", fmt.Errorf("mirror: serve: %w", err)
	}
	if !fi.IsDir() {
		return nil, "", fmt.Errorf("mirror: serve: %s is not a directory", dir)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("mirror: serve %s: %w", dir, err)
	}
	srv := &http.Server{
		Handler:           Handler(dir),
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "mirror: serve %s: %v\n", dir, err)
		}
	}()
	go func() {
		<-ctx.Done()
		shCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shCtx)
	}()
	return srv, "http://" + ln.Addr().String(), nil
}

// Handler is the mirror's file handler, for tests that run their own
// server (httptest.NewServer(mirror.Handler(dir))).
func Handler(dir string) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		if strings.HasSuffix(p, "/") || strings.Contains(p, "/.") {
			http.NotFound(w, r)
			return
		}
		if st, err := os.Stat(dir + p); err != nil || st.IsDir() {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}
