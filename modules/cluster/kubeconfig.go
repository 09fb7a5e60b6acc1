package cluster

import (
	"context"
	"fmt"
	"os"
	"time"

	k8s "k8s.io/client-go/kubernetes"

	"k8s.io/client-go/rest"

	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/pipeline"
)

// restConfig returns a loader of the admin kubeconfig kk fetched to path, for the tasks that
// talk to the API server from the machine kk runs on (network, addons). It is read when a
// task runs, after the control-plane phase wrote it, and uses a control plane that answers.
func restConfig(path string) func(context.Context) (*rest.Config, error) {
	return func(context.Context) (*rest.Config, error) {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("admin kubeconfig %s: %w (run the control-plane phase first)", path, pipeline.NotYet(err))
		}
		cfg, err := kubernetes.RESTConfig(path)
		if err != nil {
			return nil, err
		}
		cfg.QPS, cfg.Burst = 50, 100
		return cfg, nil
	}
}

// clientLoader returns a loader of a clientset on the admin kubeconfig at path, each request
// bounded by timeout (0: none).
func clientLoader(path string, timeout time.Duration) func(context.Context) (k8s.Interface, error) {
	kc := restConfig(path)
	return func(ctx context.Context) (k8s.Interface, error) {
		cfg, err := kc(ctx)
		if err != nil {
			return nil, err
		}
		cfg.Timeout = timeout
		return k8s.NewForConfig(cfg)
	}
}
