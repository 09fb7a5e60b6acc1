// Package retry is kk's one retry loop: exponential backoff with jitter (the delays come from
// k8s.io/apimachinery's wait.Backoff), a bound on attempts, a predicate for which errors are
// worth another attempt, and the context honoured while waiting. The engine's task retries and
// its redials of a host whose connection failed early both use it.
package retry

import (
	"context"
	"fmt"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Policy says how often and how patiently to try.
type Policy struct {
	// Attempts is the total number of calls, the first included (at least 1).
	Attempts int
	// Initial is the wait before the second attempt; each later wait is Factor times the
	// previous one (2 when zero), up to Cap (no cap when zero).
	Initial time.Duration
	Factor  float64
	Cap     time.Duration
	// Jitter adds a random share of each wait, up to Jitter×wait: 1.0 spreads hosts that
	// failed together (a handshake storm) over twice the interval.
	Jitter float64
}

// backoff turns p into wait.Backoff, the source of the delays.
func (p Policy) backoff() wait.Backoff {
	f := p.Factor
	if f == 0 {
		f = 2
	}
	return wait.Backoff{Duration: p.Initial, Factor: f, Jitter: p.Jitter, Cap: p.Cap, Steps: math.MaxInt32}
}

// Do calls fn until it returns nil, returns an error retriable rejects (nil retriable: every
// error is retriable), Attempts calls were made, or ctx ends while waiting. Before each wait,
// onRetry (when not nil) learns the failed attempt, its error and the wait. Do returns the
// number of calls made and the last error; when ctx ended during a wait, the error wraps
// ctx.Err() and names the attempt's error.
func Do(ctx context.Context, p Policy, retriable func(error) bool, fn func(ctx context.Context, attempt int) error,
	onRetry func(attempt int, err error, wait time.Duration)) (int, error) {
	b := p.backoff()
	for attempt := 1; ; attempt++ {
		err := fn(ctx, attempt)
		if err == nil {
			return attempt, nil
		}
		if attempt >= p.Attempts || ctx.Err() != nil || (retriable != nil && !retriable(err)) {
			return attempt, err
		}
		d := b.Step()
		if onRetry != nil {
			onRetry(attempt, err, d)
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return attempt, fmt.Errorf("%w (while waiting to retry after: %v)", ctx.Err(), err)
		}
	}
}
