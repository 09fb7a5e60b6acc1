package pipeline

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/retry"
)

// DefaultHandshakes bounds simultaneous dials when Options.Handshakes is zero. OpenSSH's
// MaxStartups (default 10:30:100) starts dropping unauthenticated connections past 10; through
// a jump host every dial is a handshake with the same sshd, so kk stays under 10. It also keeps
// kk's own CPU from splitting over hundreds of key exchanges at once, each then timing out.
const DefaultHandshakes = 8

// DefaultRedial is how an attempt that failed on a transient connection error (see
// connector.TransientError) is tried again: 6 tries over about 15 to 30 s, with full jitter
// so that hosts dropped together do not come back together.
var DefaultRedial = retry.Policy{Attempts: 6, Initial: 500 * time.Millisecond, Factor: 2, Cap: 8 * time.Second, Jitter: 1}

// dialGate bounds simultaneous dials over all hosts of a run and counts them.
type dialGate struct {
	sem     chan struct{}
	cur     atomic.Int32
	peak    atomic.Int32
	redials atomic.Int32 // attempts tried again after a transient connection error
}

func newDialGate(n int) *dialGate { return &dialGate{sem: make(chan struct{}, n)} }

// dial runs f holding one of the gate's slots; a nil gate runs f at once.
func (g *dialGate) dial(ctx context.Context, f DialFunc) (connector.Connector, error) {
	if g == nil {
		return f(ctx)
	}
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() {
		g.cur.Add(-1)
		<-g.sem
	}()
	n := g.cur.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	return f(ctx)
}
