package connector

import (
	"context"
	"errors"
	"sync"
)

// Pool caches one Connector per host name. Concurrent Gets for the same name share
// one dial; a failed dial is not cached, so a later Get tries again.
type Pool struct {
	dial func(ctx context.Context, name string) (Connector, error)

	mu     sync.Mutex
	conns  map[string]*poolEntry
	closed bool
}

type poolEntry struct {
	done chan struct{} // closed when the dial finished
	conn Connector
	err  error
}

// NewPool returns a Pool that dials with dial.
func NewPool(dial func(ctx context.Context, name string) (Connector, error)) *Pool {
	return &Pool{dial: dial, conns: map[string]*poolEntry{}}
}

// ErrPoolClosed is returned by Get after Close.
var ErrPoolClosed = errors.New("connector pool is closed")

// Get returns the connector for name, dialing it on first use.
func (p *Pool) Get(ctx context.Context, name string) (Connector, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrPoolClosed
	}
	e, ok := p.conns[name]
	if !ok {
		e = &poolEntry{done: make(chan struct{})}
		p.conns[name] = e
		p.mu.Unlock()
		e.conn, e.err = p.dial(ctx, name)
		p.mu.Lock()
		if e.err != nil {
			delete(p.conns, name)
		} else if p.closed {
			// Closed while dialing: don't leak the new connection.
			e.conn.Close()
			e.conn, e.err = nil, ErrPoolClosed
		}
		p.mu.Unlock()
		close(e.done)
		return e.conn, e.err
	}
	p.mu.Unlock()
	select {
	case <-e.done:
		return e.conn, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// DialAll dials names concurrently and returns the first error (each dial error
// names its host).
func (p *Pool) DialAll(ctx context.Context, names []string) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() { _, errs[i] = p.Get(ctx, n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close closes every connection dialed so far. Gets after Close fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	entries := p.conns
	p.conns = map[string]*poolEntry{}
	p.mu.Unlock()
	var errs []error
	for _, e := range entries {
		select {
		case <-e.done:
			if e.conn != nil {
				errs = append(errs, e.conn.Close())
			}
		default: // still dialing: Get closes it when the dial returns
		}
	}
	return errors.Join(errs...)
}
