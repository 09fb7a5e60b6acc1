package download

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseChecksum(t *testing.T) {
	h1, h2, h3 := sha([]byte("1")), sha([]byte("2")), sha([]byte("3"))
	cases := []struct {
		name, data, entry, want, err string
	}{
		{"bare (dl.k8s.io)", h1 + "\n", "kubeadm", h1, ""},
		{"bare, no entry", h1, "", h1, ""},
		{"bare upper case", strings.ToUpper(h1), "", h1, ""},
		{"sha256sum one line", h1 + "  containerd-2.1.4-linux-amd64.tar.gz\n", "containerd-2.1.4-linux-amd64.tar.gz", h1, ""},
		{"sha256sum, no entry", h1 + "  helm-v3.18.4-linux-amd64.tar.gz\n", "", h1, ""},
		{"SHA256SUMS", fmt.Sprintf("%s  etcd-v3.5.21-darwin-amd64.zip\n%s  etcd-v3.5.21-linux-amd64.tar.gz\n%s  etcd-v3.5.21-linux-arm64.tar.gz\n", h1, h2, h3),
			"etcd-v3.5.21-linux-arm64.tar.gz", h3, ""},
		{"binary mode star", h2 + " *runc.arm64\n" + h1 + " *runc.amd64\n", "runc.amd64", h1, ""},
		{"path in name", h1 + "  ./bin/linux/amd64/kubectl\n" + h2 + "  ./bin/linux/amd64/kubeadm\n", "kubeadm", h2, ""},
		{"BSD style", "SHA256 (k3s) = " + h3 + "\n", "k3s", h3, ""},
		{"comments and CRLF", "# sums\r\n" + h1 + "  a\r\n" + h2 + "  b\r\n", "b", h2, ""},
		{"no entry for file", h1 + "  a\n", "b", "", "no SHA-256 for b"},
		{"several, no entry", h1 + "  a\n" + h2 + "  b\n", "", "", "want a single hash"},
		{"not a hash", "deadbeef  a\n", "a", "", "no SHA-256 for a"},
		{"html error page", "<html>Not Found</html>", "a", "", "no SHA-256"},
		{"conflicting lines", h1 + "  a\n" + h2 + "  ./a\n", "a", "", "different hashes"},
	}
	for _, tc := range cases {
		got, err := ParseChecksum([]byte(tc.data), tc.entry)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestDiskFullNamesCacheDir(t *testing.T) {
	err := localError("/var/cache/kk", "etcd/v3.5.21/amd64/etcd-v3.5.21-linux-amd64.tar.gz.part",
		&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC})
	if !errors.Is(err, ErrDiskFull) {
		t.Error("not ErrDiskFull")
	}
	if !strings.Contains(err.Error(), "cache dir /var/cache/kk is full") || !strings.Contains(err.Error(), "etcd-v3.5.21-linux-amd64.tar.gz") {
		t.Errorf("message: %v", err)
	}
	other := localError("/c", "f", os.ErrPermission)
	if errors.Is(other, ErrDiskFull) || !errors.Is(other, os.ErrPermission) || !strings.Contains(other.Error(), "/c") {
		t.Errorf("other: %v", other)
	}
}

func TestParseContentRange(t *testing.T) {
	for s, want := range map[string][3]int64{
		"bytes 100-199/200": {100, 200, 1},
		"bytes 0-9/*":       {0, -1, 1},
		"bytes */200":       {0, 0, 0},
		"items 1-2/3":       {0, 0, 0},
		"":                  {0, 0, 0},
	} {
		start, size, ok := parseContentRange(s)
		if ok != (want[2] == 1) || ok && (start != want[0] || size != want[1]) {
			t.Errorf("%q: %d %d %v", s, start, size, ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	d := &Downloader{Backoff: time.Second}
	for retry, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: 30 * time.Second} {
		if got := d.backoff(retry); got != want {
			t.Errorf("backoff(%d) = %v, want %v", retry, got, want)
		}
	}
	if (&Downloader{}).retries() != 3 || (&Downloader{Retries: -1}).retries() != 0 || (&Downloader{Retries: 5}).retries() != 5 {
		t.Error("retries defaults")
	}
}
