package connector

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeConn struct {
	Local
	closed atomic.Int32
}

func (f *fakeConn) Close() error { f.closed.Add(1); return nil }

func TestPoolDialsOncePerHost(t *testing.T) {
	var dials atomic.Int32
	conns := map[string]*fakeConn{"a": {}, "b": {}}
	var fail atomic.Bool
	fail.Store(true)
	p := NewPool(func(ctx context.Context, name string) (Connector, error) {
		dials.Add(1)
		time.Sleep(50 * time.Millisecond)
		if name == "bad" && fail.Load() {
			return nil, errors.New("host bad: unreachable")
		}
		if c, ok := conns[name]; ok {
			return c, nil
		}
		return &fakeConn{}, nil
	})
	var wg sync.WaitGroup
	got := make([]Connector, 20)
	for i := range got {
		wg.Go(func() {
			c, err := p.Get(context.Background(), []string{"a", "b"}[i%2])
			if err != nil {
				t.Error(err)
			}
			got[i] = c
		})
	}
	wg.Wait()
	if dials.Load() != 2 {
		t.Fatalf("%d dials", dials.Load())
	}
	for i, c := range got {
		if c != Connector(conns[[]string{"a", "b"}[i%2]]) {
			t.Fatalf("Get %d returned another connector", i)
		}
	}
	// Errors are shared by concurrent callers but not cached.
	if err := p.DialAll(context.Background(), []string{"a", "bad", "bad"}); err == nil || err.Error() != "host bad: unreachable\nhost bad: unreachable" {
		t.Fatalf("DialAll: %v", err)
	}
	fail.Store(false)
	if _, err := p.Get(context.Background(), "bad"); err != nil {
		t.Fatal(err)
	}
	// A waiter gives up with its own context.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { p.Get(context.Background(), "slow") }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if _, err := p.Get(ctx, "slow"); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiter: %v", err)
	}
	time.Sleep(60 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if conns["a"].closed.Load() != 1 || conns["b"].closed.Load() != 1 {
		t.Fatal("not closed")
	}
	if _, err := p.Get(context.Background(), "a"); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("after close: %v", err)
	}
}
