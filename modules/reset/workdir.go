package reset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/kubernetes"
)

// Workdir is what kk delete cluster changes in the workdir once every host is reset: the
// admin kubeconfig goes (it names a cluster that no longer exists), and kk's etcd PKI (etcd
// type kubekey) is moved aside to EtcdPKIAside, so that a later kk create cluster makes a
// new CA instead of reusing this cluster's. Downloads (cache), imported bundles (artifact),
// logs, etcd snapshots fetched with kk etcd backup and the registry's PKI stay.
type Workdir struct {
	Kubeconfig   string
	EtcdPKI      string // "" unless etcd type kubekey
	EtcdPKIAside string
}

// WorkdirFor names the workdir state of c under workdir; now names the moved-aside PKI.
func WorkdirFor(c *config.Cluster, workdir string, now time.Time) Workdir {
	w := Workdir{Kubeconfig: kubernetes.KubeconfigPath(c, workdir)}
	if c.Etcd.Type == config.EtcdKubeKey {
		w.EtcdPKI = etcd.PKIDir(workdir)
		w.EtcdPKIAside = w.EtcdPKI + ".deleted-" + now.UTC().Format("20060102T150405Z")
	}
	return w
}

// Present lists what of w exists (what Clean would change).
func (w Workdir) Present() []string {
	var out []string
	for _, p := range []string{w.Kubeconfig, w.EtcdPKI} {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Clean removes the kubeconfig and moves the etcd PKI aside; it returns one line per change.
func (w Workdir) Clean() ([]string, error) {
	var done []string
	if err := os.Remove(w.Kubeconfig); err == nil {
		done = append(done, "removed "+w.Kubeconfig)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return done, err
	}
	if w.EtcdPKI == "" {
		return done, nil
	}
	if err := os.Rename(w.EtcdPKI, w.EtcdPKIAside); err == nil {
		done = append(done, fmt.Sprintf("moved %s to %s", w.EtcdPKI, w.EtcdPKIAside))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return done, err
	}
	return done, nil
}
