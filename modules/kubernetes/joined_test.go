package kubernetes

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/retry"
)

// kubectlConn answers every shell test with yes, and kubectl first with `fails` failures
// (an API server restarting: EOF), then with the node's labels.
type kubectlConn struct {
	fails int
	asked atomic.Int32
}

func (c *kubectlConn) Exec(_ context.Context, cmd string, _ connector.ExecOptions) (connector.Result, error) {
	if !strings.Contains(cmd, "kubectl") {
		return connector.Result{Cmd: cmd}, nil
	}
	if int(c.asked.Add(1)) <= c.fails {
		return connector.Result{Cmd: cmd, ExitCode: 1, Stderr: "error: client rate limiter Wait returned an error: context deadline exceeded - error from a previous attempt: EOF"}, nil
	}
	return connector.Result{Cmd: cmd, Stdout: `{"kubernetes.io/hostname":"n4"}`}, nil
}
func (c *kubectlConn) Upload(context.Context, connector.File) (bool, error) { return false, nil }
func (c *kubectlConn) Fetch(context.Context, string) ([]byte, error)        { return nil, nil }
func (c *kubectlConn) Close() error                                         { return nil }

func askJoined(t *testing.T, conn *kubectlConn) (joinState, error) {
	t.Helper()
	h := pipeline.NewHost("n4", nil, func(context.Context) (connector.Connector, error) { return conn, nil })
	var state joinState
	var jerr error
	g, err := pipeline.NewGraph([]pipeline.Task{{Name: "ask", Hosts: pipeline.AllHosts(), ReadOnly: true,
		Run: func(ctx context.Context, tg *pipeline.Target) (bool, error) {
			state, jerr = joined(ctx, tg, false)
			return false, nil
		}}}, []*pipeline.Host{h})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Run(context.Background(), g, pipeline.Options{Concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	return state, jerr
}

// An API server that kk restarts in the same run (kk add nodes' etcd members) may fail a few
// requests: joined asks again and gets its answer; one that never answers is an error after
// apiAsk's attempts, never "not joined".
func TestJoinedAsksAgain(t *testing.T) {
	saved := apiAsk
	apiAsk = retry.Policy{Attempts: saved.Attempts, Initial: time.Millisecond}
	defer func() { apiAsk = saved }()

	conn := &kubectlConn{fails: saved.Attempts - 1}
	if state, err := askJoined(t, conn); err != nil || state != joinedAll {
		t.Errorf("answered on the last attempt: %v, %v", state, err)
	}
	conn = &kubectlConn{fails: saved.Attempts}
	state, err := askJoined(t, conn)
	if err == nil || !strings.Contains(err.Error(), "cannot tell whether node n4 is registered") || !strings.Contains(err.Error(), "EOF") {
		t.Errorf("never answered: %v, %v", state, err)
	}
	if got := int(conn.asked.Load()); got != saved.Attempts {
		t.Errorf("asked %d times, want %d", got, saved.Attempts)
	}
}
