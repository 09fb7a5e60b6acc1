package v1alpha2

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// FieldError is one problem found in a file.
type FieldError struct {
	// File is the source the data came from (a path, or what the caller named it).
	File string
	// Path is the field, as in spec.hosts[1].name ("" for the whole file).
	Path string
	// Line is 1-based; 0 when unknown.
	Line int
	// Msg says what is wrong.
	Msg string
}

// Error formats the problem as FILE:LINE: PATH: MSG, leaving out what is unknown.
func (e *FieldError) Error() string {
	return formatLocated(e.File, e.Line, e.Path, e.Msg)
}

func formatLocated(file string, line int, path, msg string) string {
	var b strings.Builder
	if file != "" {
		b.WriteString(file)
		if line > 0 {
			b.WriteString(":" + strconv.Itoa(line))
		}
		b.WriteString(": ")
	} else if line > 0 {
		b.WriteString("line " + strconv.Itoa(line) + ": ")
	}
	if path != "" {
		b.WriteString(path + ": ")
	}
	b.WriteString(msg)
	return b.String()
}

// ErrorList is every problem found in a file. It is the error Load and Parse
// return when a file is invalid; use errors.As to get at the entries.
type ErrorList []*FieldError

// Error prints one problem per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Warnings are non-fatal findings, each formatted like a FieldError
// (FILE:LINE: PATH: MSG). kk prints them and goes on.
type Warnings []string

// report collects errors and warnings for one file, placing them with lines.
type report struct {
	file  string
	lines lineIndex
	errs  ErrorList
	warns Warnings
	// broken are paths whose value had the wrong type and was dropped; findings
	// on them or below them would only repeat the type error.
	broken []string
}

// isBroken reports whether path is, or is inside, a broken path.
func (r *report) isBroken(path string) bool {
	for _, b := range r.broken {
		if path == b || strings.HasPrefix(path, b+".") || strings.HasPrefix(path, b+"[") {
			return true
		}
	}
	return false
}

func (r *report) errorf(path, format string, args ...any) {
	if r.isBroken(path) {
		return
	}
	r.errs = append(r.errs, &FieldError{File: r.file, Path: path, Line: r.lines.lookup(path), Msg: fmt.Sprintf(format, args...)})
}

func (r *report) errorAt(path string, line int, format string, args ...any) {
	r.errs = append(r.errs, &FieldError{File: r.file, Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (r *report) warnf(path, format string, args ...any) {
	if r.isBroken(path) {
		return
	}
	r.warns = append(r.warns, formatLocated(r.file, r.lines.lookup(path), path, fmt.Sprintf(format, args...)))
}

// err returns the collected errors sorted by line (nil when there are none).
func (r *report) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	sort.SliceStable(r.errs, func(i, j int) bool { return r.errs[i].Line < r.errs[j].Line })
	return r.errs
}
