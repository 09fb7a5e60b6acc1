package download

import "github.com/kk-project/kk/artifacts/catalog"

// EventKind says what a Progress event reports.
type EventKind int

const (
	// Started: a download starts; Done > 0 when it resumes a partial file.
	Started EventKind = iota
	// Advanced: more bytes arrived (sent at most every 256 KiB per file, and at the end).
	Advanced
	// Retrying: an attempt failed (Err says why); the next starts after a backoff.
	Retrying
	// Reused: the file was already in the cache and verified; nothing was downloaded.
	Reused
	// Finished: downloaded, verified and in place.
	Finished
	// Failed: given up (Err says why).
	Failed
)

func (k EventKind) String() string {
	switch k {
	case Started:
		return "started"
	case Advanced:
		return "advanced"
	case Retrying:
		return "retrying"
	case Reused:
		return "reused"
	case Finished:
		return "finished"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Progress is one event for a progress display. Events are delivered one at a time (never
// concurrently) from the downloading goroutines; the callback should return quickly.
type Progress struct {
	Kind      EventKind
	Component catalog.Component
	File      string // cache-relative path
	Done      int64  // bytes of the file on disk (resumed bytes included)
	Total     int64  // full size; -1 when unknown
	Attempt   int    // 1 for the first attempt
	Err       error  // for Retrying and Failed
}
