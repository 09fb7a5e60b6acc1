package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kk-project/kk/e2e/testbed"
)

// lightPerBed is how many light hosts one testbed holds (one /24 on its bridge); beyond that
// the hosts are spread over several beds.
const lightPerBed = 240

// bed is a set of light hosts from e2e/testbed: network namespaces on a bridge, each with
// its own sshd, sharing this machine's filesystem. Only addresses inside those namespaces
// are ever contacted. More than lightPerBed hosts take several beds (name, name2, name3…),
// each with its own subnet, client key and host keys.
type bed struct {
	hosts      []benchHost
	keyPath    string // the client key of every host when there is one bed; see benchHost.Key
	knownHosts string // every host's key, all beds together
	beds       int
	down       func(context.Context) error
}

// lightUp brings up n light hosts; work holds the joint known_hosts file of several beds.
func lightUp(ctx context.Context, name string, n int, work string) (*bed, error) {
	b := &bed{}
	var opts []testbed.Options
	b.down = func(ctx context.Context) error {
		var errs []error
		for _, o := range opts {
			errs = append(errs, testbed.LightDown(ctx, o))
		}
		return errors.Join(errs...)
	}
	var known []byte
	for k := 0; k*lightPerBed < n; k++ {
		o := testbed.Options{Name: name}
		if k > 0 {
			o.Name = fmt.Sprintf("%s%d", name, k+1)
		}
		opts = append(opts, o)
		size := min(lightPerBed, n-k*lightPerBed)
		tb, err := testbed.LightUp(ctx, o, size)
		if err != nil && ctx.Err() == nil {
			// an sshd slow to answer on a loaded machine: hosts that are up are kept, try once more
			tb, err = testbed.LightUp(ctx, o, size)
		}
		if err != nil {
			if derr := b.down(context.WithoutCancel(ctx)); derr != nil {
				err = fmt.Errorf("%w (and taking the half-up beds down: %v)", err, derr)
			}
			return nil, err
		}
		if len(tb.Machines) != size {
			return nil, fmt.Errorf("testbed %s: asked for %d light hosts, got %d", o.Name, size, len(tb.Machines))
		}
		kh, err := os.ReadFile(tb.KnownHosts)
		if err != nil {
			return nil, fmt.Errorf("testbed %s: %w", o.Name, err)
		}
		known = append(known, kh...)
		if k == 0 {
			b.keyPath, b.knownHosts = tb.KeyPath, tb.KnownHosts
		}
		for _, m := range tb.Machines {
			h := benchHost{Name: m.Name, Address: m.Address, Key: tb.KeyPath}
			if n > lightPerBed {
				h.Name = o.Name + "-" + m.Name // every bed names its hosts n1, n2…
			}
			b.hosts = append(b.hosts, h)
		}
	}
	b.beds = len(opts)
	if b.beds > 1 {
		b.knownHosts = filepath.Join(work, fmt.Sprintf("known_hosts-%d", n))
		if err := os.WriteFile(b.knownHosts, known, 0o600); err != nil {
			return nil, errors.Join(err, b.down(context.WithoutCancel(ctx)))
		}
	}
	return b, nil
}
