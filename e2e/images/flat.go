package images

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// Tree is the flattened file system of an image: every layer applied in
// order, a later entry replacing an earlier one at the same path.
type Tree map[string]Entry

// Flatten applies layers in order.
func Flatten(layers ...[]Entry) (Tree, error) {
	t := Tree{}
	for _, l := range layers {
		norm, err := normalize(l)
		if err != nil {
			return nil, err
		}
		for _, e := range norm {
			t[e.Path] = e
		}
	}
	return t, nil
}

// Resolve follows symlinks (in the final component and in parent
// directories) inside the tree and returns the entry p names.
func (t Tree) Resolve(p string) (Entry, error) {
	return t.resolve(p, 0)
}

func (t Tree) resolve(p string, depth int) (Entry, error) {
	if depth > 40 {
		return Entry{}, fmt.Errorf("%s: too many levels of symbolic links", p)
	}
	clean, ok := cleanPath(p)
	if !ok {
		return Dir("", 0o755), nil
	}
	parts := strings.Split(clean, "/")
	cur := ""
	for i, part := range parts {
		next := part
		if cur != "" {
			next = cur + "/" + part
		}
		e, ok := t[next]
		if !ok {
			return Entry{}, fmt.Errorf("/%s: %w", clean, os.ErrNotExist)
		}
		if e.Type == tar.TypeSymlink {
			target := e.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join("/", cur, target)
			}
			rest := strings.Join(parts[i+1:], "/")
			return t.resolve(path.Join(target, rest), depth+1)
		}
		if e.Type == tar.TypeLink {
			if e2, ok := t[e.Linkname]; ok {
				e2.Path = e.Path
				e = e2
			}
		}
		if i < len(parts)-1 && e.Type != tar.TypeDir {
			return Entry{}, fmt.Errorf("/%s: /%s is not a directory", clean, next)
		}
		if i == len(parts)-1 {
			return e, nil
		}
		cur = next
	}
	return Entry{}, fmt.Errorf("/%s: %w", clean, os.ErrNotExist)
}

// open returns the content of a regular file entry.
func (e Entry) open() (io.ReaderAt, io.Closer, error) {
	if e.Type != tar.TypeReg {
		return nil, nil, fmt.Errorf("/%s: not a regular file", e.Path)
	}
	if e.Src != "" {
		f, err := os.Open(e.Src)
		if err != nil {
			return nil, nil, err
		}
		return f, f, nil
	}
	return bytes.NewReader(e.Data), io.NopCloser(nil), nil
}

// libDirs is where the dynamic loader of a Debian amd64 glibc looks for
// libraries when there is no ld.so.cache (its built-in system dirs).
func libDirs() []string {
	return []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"}
}

// CheckELF checks that every dynamically linked x86-64 ELF file in the
// tree finds its program interpreter and every library it needs (DT_NEEDED,
// with RUNPATH/RPATH and the default directories), so that a userland
// assembled from .deb files is complete. It returns all problems, sorted.
func (t Tree) CheckELF() error {
	var problems []string
	paths := make([]string, 0, len(t))
	for p, e := range t {
		if e.Type == tar.TypeReg {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		msgs, err := t.checkOne(t[p])
		if err != nil {
			problems = append(problems, fmt.Sprintf("/%s: %v", p, err))
		}
		problems = append(problems, msgs...)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func (t Tree) checkOne(e Entry) ([]string, error) {
	ra, c, err := e.open()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	magic := make([]byte, 4)
	if _, err := ra.ReadAt(magic, 0); err != nil || string(magic) != elf.ELFMAG {
		return nil, nil
	}
	f, err := elf.NewFile(ra)
	if err != nil {
		return nil, fmt.Errorf("parse ELF: %w", err)
	}
	if f.Machine != elf.EM_X86_64 || (f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN) {
		return nil, nil
	}
	var msgs []string
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(prog.Open())
		if err != nil {
			return nil, fmt.Errorf("read interpreter: %w", err)
		}
		interp := strings.TrimRight(string(b), "\x00")
		if _, err := t.Resolve(interp); err != nil {
			msgs = append(msgs, fmt.Sprintf("/%s: program interpreter %s is missing", e.Path, interp))
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil || len(needed) == 0 {
		return msgs, nil // static, or no dynamic section
	}
	var search []string
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		vals, _ := f.DynString(tag)
		for _, v := range vals {
			for _, d := range strings.Split(v, ":") {
				search = append(search, strings.ReplaceAll(d, "$ORIGIN", "/"+path.Dir(e.Path)))
			}
		}
	}
	search = append(search, libDirs()...)
	for _, lib := range needed {
		found := false
		for _, d := range search {
			if r, err := t.Resolve(path.Join(d, lib)); err == nil && r.Type == tar.TypeReg {
				found = true
				break
			}
		}
		if !found {
			msgs = append(msgs, fmt.Sprintf("/%s needs %s, which is not in the image", e.Path, lib))
		}
	}
	return msgs, nil
}
