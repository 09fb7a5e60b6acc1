package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kk-project/kk/pipeline/connector"
)

// slowUploads is a connector whose uploads take a while: it counts those in flight and the
// most at once, fails the file named fail, and reports the files it wrote.
type slowUploads struct {
	fakeConn
	fail           string
	now, most, all atomic.Int32
	mu             sync.Mutex
	done           []string
}

func (s *slowUploads) Upload(_ context.Context, f connector.File) (bool, error) {
	n := s.now.Add(1)
	defer s.now.Add(-1)
	for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
	}
	s.all.Add(1)
	time.Sleep(20 * time.Millisecond)
	if f.Path == s.fail {
		return false, errors.New("disk full")
	}
	s.mu.Lock()
	s.done = append(s.done, f.Path)
	s.mu.Unlock()
	return true, nil
}

// UploadAll overlaps uploads, at most uploadsAtOnce, and after a failure starts no more,
// naming the file that failed.
func TestUploadAll(t *testing.T) {
	var files []connector.File
	for i := range 12 {
		files = append(files, connector.File{Path: fmt.Sprintf("/f%d", i), Data: []byte("x"), Mode: 0o644})
	}
	conn := &slowUploads{}
	tg := &Target{Host: NewHost("h1", nil, nil), Conn: conn, emit: func(Event) {}}
	changed, err := tg.UploadAll(context.Background(), files)
	if err != nil || !changed || len(conn.done) != 12 {
		t.Fatalf("changed %v, err %v, wrote %d of 12", changed, err, len(conn.done))
	}
	if m := conn.most.Load(); m < 2 || m > 4 {
		t.Errorf("%d uploads at once at most, want 2..4", m)
	}

	conn = &slowUploads{fail: "/f1"}
	tg.Conn = conn
	_, err = tg.UploadAll(context.Background(), files)
	if err == nil || !strings.Contains(err.Error(), "write /f1: disk full") {
		t.Fatalf("err %v, want the failed file named", err)
	}
	if n := conn.all.Load(); n >= 12 {
		t.Errorf("%d uploads tried after the failure of /f1, want those under way only", n)
	}
}
