package retry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDoRetriesWithGrowingJitteredWaits(t *testing.T) {
	var waits []time.Duration
	calls := 0
	p := Policy{Attempts: 5, Initial: 10 * time.Millisecond, Factor: 2, Cap: 25 * time.Millisecond, Jitter: 0.5}
	n, err := Do(context.Background(), p, nil, func(_ context.Context, attempt int) error {
		calls++
		if attempt != calls {
			t.Errorf("attempt %d on call %d", attempt, calls)
		}
		if attempt < 4 {
			return errors.New("transient")
		}
		return nil
	}, func(_ int, _ error, d time.Duration) { waits = append(waits, d) })
	if err != nil || n != 4 {
		t.Fatalf("n=%d err=%v, want success on attempt 4", n, err)
	}
	// 10ms, 20ms, then the 25ms cap; each plus up to half of itself
	lo := []time.Duration{10, 20, 25}
	if len(waits) != 3 {
		t.Fatalf("waits %v, want 3", waits)
	}
	for i, w := range waits {
		min, max := lo[i]*time.Millisecond, lo[i]*time.Millisecond*3/2
		if w < min || w > max {
			t.Errorf("wait %d = %s, want in [%s, %s]", i+1, w, min, max)
		}
	}
}

func TestDoStopsOnLimitPredicateAndContext(t *testing.T) {
	boom := errors.New("boom")
	n, err := Do(context.Background(), Policy{Attempts: 3, Initial: time.Millisecond}, nil,
		func(context.Context, int) error { return boom }, nil)
	if n != 3 || !errors.Is(err, boom) {
		t.Errorf("limit: n=%d err=%v", n, err)
	}

	fatal := errors.New("auth refused")
	n, err = Do(context.Background(), Policy{Attempts: 9, Initial: time.Millisecond},
		func(err error) bool { return !errors.Is(err, fatal) },
		func(context.Context, int) error { return fatal }, nil)
	if n != 1 || !errors.Is(err, fatal) {
		t.Errorf("predicate: n=%d err=%v, want 1 call", n, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	n, err = Do(ctx, Policy{Attempts: 9, Initial: time.Hour}, nil,
		func(context.Context, int) error { return boom }, nil)
	if n != 1 || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "boom") || time.Since(start) > time.Second {
		t.Errorf("context: n=%d err=%v after %s", n, err, time.Since(start))
	}
}
