package main

import (
	"context"
	"fmt"

	"github.com/kk-project/kk/e2e/testbed"
)

// bed is a set of light hosts from e2e/testbed: network namespaces on a bridge, each with
// its own sshd, sharing this machine's filesystem. Only addresses inside those namespaces
// are ever contacted.
type bed struct {
	hosts      []benchHost
	keyPath    string
	knownHosts string
	down       func(context.Context) error
}

func lightUp(ctx context.Context, name string, n int) (*bed, error) {
	o := testbed.Options{Name: name}
	tb, err := testbed.LightUp(ctx, o, n)
	if err != nil {
		if derr := testbed.LightDown(context.WithoutCancel(ctx), o); derr != nil {
			err = fmt.Errorf("%w (and taking the half-up bed down: %v)", err, derr)
		}
		return nil, err
	}
	b := &bed{
		keyPath:    tb.KeyPath,
		knownHosts: tb.KnownHosts,
		down:       func(ctx context.Context) error { return testbed.LightDown(ctx, o) },
	}
	for _, m := range tb.Machines {
		b.hosts = append(b.hosts, benchHost{Name: m.Name, Address: m.Address})
	}
	if len(b.hosts) != n {
		return nil, fmt.Errorf("testbed %s: asked for %d light hosts, got %d", name, n, len(b.hosts))
	}
	return b, nil
}
