package connector

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// uploadContract checks the Upload/Fetch behaviour every connector must have.
// dir is a directory on the "host" (the test machine for all our connectors).
func uploadContract(t *testing.T, c Connector, dir string) {
	ctx := context.Background()
	p := filepath.Join(dir, "etc", "app", "app.conf")
	f := File{Path: p, Data: []byte("v1\n"), Mode: 0o640}

	changed, err := c.Upload(ctx, f)
	if err != nil || !changed {
		t.Fatalf("first upload: changed=%v err=%v", changed, err)
	}
	assertFile(t, p, "v1\n", 0o640)

	changed, err = c.Upload(ctx, f)
	if err != nil || changed {
		t.Fatalf("same upload: changed=%v err=%v", changed, err)
	}

	// Mode change alone is a change.
	f.Mode = 0o600
	if changed, err = c.Upload(ctx, f); err != nil || !changed {
		t.Fatalf("mode change: changed=%v err=%v", changed, err)
	}
	assertFile(t, p, "v1\n", 0o600)

	// Content change replaces the file atomically: a reader holding the old file
	// keeps its content, and the path points at a new inode.
	old, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	oldIno := inode(t, p)
	f.Data = []byte("v2\n")
	if changed, err = c.Upload(ctx, f); err != nil || !changed {
		t.Fatalf("content change: changed=%v err=%v", changed, err)
	}
	assertFile(t, p, "v2\n", 0o600)
	if inode(t, p) == oldIno {
		t.Fatal("file rewritten in place, not replaced")
	}
	buf := make([]byte, 10)
	n, _ := old.ReadAt(buf, 0)
	if string(buf[:n]) != "v1\n" {
		t.Fatalf("old reader sees %q", buf[:n])
	}

	// Owner given explicitly (numeric and by name) matches the existing file.
	for _, owner := range []string{"0:0", "root", "root:root"} {
		f.Owner = owner
		if changed, err = c.Upload(ctx, f); err != nil || changed {
			t.Fatalf("owner %q: changed=%v err=%v", owner, changed, err)
		}
	}
	f.Owner = "nobody:nogroup"
	if changed, err = c.Upload(ctx, f); err != nil || !changed {
		t.Fatalf("owner change: changed=%v err=%v", changed, err)
	}
	if changed, err = c.Upload(ctx, f); err != nil || changed {
		t.Fatalf("owner same: changed=%v err=%v", changed, err)
	}

	// Large file streamed from LocalPath; setuid mode.
	big := make([]byte, 3<<20+17)
	rand.Read(big)
	lp := filepath.Join(t.TempDir(), "big")
	os.WriteFile(lp, big, 0o600)
	bf := File{Path: filepath.Join(dir, "bin", "tool"), LocalPath: lp, Mode: 0o755 | fs.ModeSetuid}
	if changed, err = c.Upload(ctx, bf); err != nil || !changed {
		t.Fatalf("big: changed=%v err=%v", changed, err)
	}
	if changed, err = c.Upload(ctx, bf); err != nil || changed {
		t.Fatalf("big again: changed=%v err=%v", changed, err)
	}
	st, _ := os.Stat(bf.Path)
	if st.Mode()&fs.ModeSetuid == 0 || st.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v", st.Mode())
	}
	got, err := c.Fetch(ctx, bf.Path)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("fetch big: %d bytes, err %v", len(got), err)
	}

	// Errors.
	if _, err := c.Upload(ctx, File{Path: "relative/path", Data: []byte("x")}); err == nil || !strings.HasPrefix(err.Error(), "host ") {
		t.Fatalf("relative path: %v", err)
	}
	if _, err := c.Upload(ctx, File{Path: p, LocalPath: filepath.Join(dir, "no-such-local")}); err == nil || !strings.HasPrefix(err.Error(), "host ") {
		t.Fatalf("missing local file: %v", err)
	}
	blocker := filepath.Join(dir, "blocker")
	os.WriteFile(blocker, nil, 0o644)
	if _, err := c.Upload(ctx, File{Path: filepath.Join(blocker, "x"), Data: []byte("x")}); err == nil || !strings.HasPrefix(err.Error(), "host ") {
		t.Fatalf("parent is a file: %v", err)
	}
	assertNoTemps(t, dir)
}

func assertFile(t *testing.T, p, content string, mode fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil || string(b) != content {
		t.Fatalf("%s: %q %v", p, b, err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != mode {
		t.Fatalf("%s: mode %v, want %v", p, st.Mode().Perm(), mode)
	}
}

func inode(t *testing.T, p string) uint64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

func assertNoTemps(t *testing.T, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && (strings.Contains(d.Name(), ".kk-tmp-") || strings.Contains(d.Name(), "kk-upload-")) {
				t.Errorf("temp file left: %s", p)
			}
			return nil
		})
	}
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, and uploads write as root)")
	}
}

func TestSSHUploadAsRoot(t *testing.T) {
	requireRoot(t)
	srv := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	s := dial(t, configFor(t, srv, "n1"))
	uploadContract(t, s, t.TempDir())
}

func TestSSHUploadWithSudo(t *testing.T) {
	requireRoot(t)
	srv := newTestServer(t, func(s *testServer) { s.Password = "pw"; fakeSudo(t, s, "pw", false) })
	c := configFor(t, srv, "n1")
	c.User = "kube"
	s := dial(t, c)
	uploadContract(t, s, t.TempDir())
	assertNoTemps(t, srv.Dir) // the user's staging files are gone from "home"
}

func TestLocalUpload(t *testing.T) {
	requireRoot(t)
	uploadContract(t, NewLocal(), t.TempDir())
}

// TestUploadAll: many files through one connection. Over SSH as a user with sudo, the whole
// batch takes one privileged command to test and one to install what differs, however many
// files; a file in the way fails the batch naming it, and no staged copy is left.
func TestUploadAll(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	files := func(dir string, n int) []File {
		var fs []File
		for i := range n {
			fs = append(fs, File{Path: filepath.Join(dir, "sub", fmt.Sprintf("f%d", i)), Data: []byte(fmt.Sprintf("v%d\n", i)), Mode: 0o644})
		}
		return fs
	}
	count := func(changed []bool) (n int) {
		for _, c := range changed {
			if c {
				n++
			}
		}
		return n
	}
	srv := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	var attempts string
	sudoSrv := newTestServer(t, func(s *testServer) { s.Password = "pw"; attempts = fakeSudo(t, s, "pw", false) })
	kube := configFor(t, sudoSrv, "n1")
	kube.User = "kube"
	sudos := func() int {
		b, _ := os.ReadFile(attempts)
		return strings.Count(string(b), "attempt")
	}
	for _, c := range []struct {
		name string
		conn Connector
	}{{"root", dial(t, configFor(t, srv, "n1"))}, {"sudo", dial(t, kube)}, {"local", NewLocal()}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			fs := files(dir, batchSize+3)                                                // two batches
			if _, err := c.conn.Exec(ctx, "true", ExecOptions{Sudo: true}); err != nil { // (sudo's probe)
				t.Fatal(err)
			}
			before := sudos()
			changed, err := UploadAll(ctx, c.conn, fs)
			if err != nil || count(changed) != len(fs) {
				t.Fatalf("first: %d of %d written, err %v", count(changed), len(fs), err)
			}
			for i, f := range fs {
				assertFile(t, f.Path, fmt.Sprintf("v%d\n", i), 0o644)
			}
			if c.name == "sudo" && sudos()-before != 4 {
				t.Errorf("%d sudo commands for %d files, want 4 (2 batches: test, install)", sudos()-before, len(fs))
			}
			if changed, err := UploadAll(ctx, c.conn, fs); err != nil || count(changed) != 0 {
				t.Fatalf("again: %d written, err %v", count(changed), err)
			}
			fs[2].Data = []byte("new\n")
			fs[5].Mode = 0o600
			changed, err = UploadAll(ctx, c.conn, fs)
			if err != nil || count(changed) != 2 || !changed[2] || !changed[5] {
				t.Fatalf("two changed: %v, err %v", changed, err)
			}
			assertFile(t, fs[2].Path, "new\n", 0o644)
			assertFile(t, fs[5].Path, "v5\n", 0o600)

			blocker := filepath.Join(dir, "blocker")
			os.WriteFile(blocker, nil, 0o644)
			bad := append(files(filepath.Join(dir, "other"), 3), File{Path: filepath.Join(blocker, "x"), Data: []byte("x"), Mode: 0o644})
			if _, err := UploadAll(ctx, c.conn, bad); err == nil || !strings.Contains(err.Error(), filepath.Join(blocker, "x")) {
				t.Errorf("a file under a regular file: %v, want it named", err)
			}
			assertNoTemps(t, dir, sudoSrv.Dir)
		})
	}
}
