package kubernetes

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/connector/connectortest"
	"github.com/kk-project/kk/pipeline/retry"
)

// kubectlScript answers every shell test with yes, and kubectl first with fails failures (an
// API server restarting: EOF), then with the node's labels.
func kubectlScript(fails int) *connectortest.Script {
	asked := 0
	return &connectortest.Script{Answer: func(cmd string) (connector.Result, bool) {
		if !strings.Contains(cmd, "kubectl") {
			return connector.Result{}, false
		}
		if asked++; asked <= fails {
			return connector.Result{ExitCode: 1, Stderr: "error: client rate limiter Wait returned an error: context deadline exceeded - error from a previous attempt: EOF"}, true
		}
		return connector.Result{Stdout: `{"kubernetes.io/hostname":"n4"}`}, true
	}}
}

func askJoined(t *testing.T, conn connector.Connector) (joinState, error) {
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

	if state, err := askJoined(t, kubectlScript(saved.Attempts-1)); err != nil || state != joinedAll {
		t.Errorf("answered on the last attempt: %v, %v", state, err)
	}
	conn := kubectlScript(saved.Attempts)
	state, err := askJoined(t, conn)
	if err == nil || !strings.Contains(err.Error(), "cannot tell whether node n4 is registered") || !strings.Contains(err.Error(), "EOF") {
		t.Errorf("never answered: %v, %v", state, err)
	}
	kubectl := 0
	for _, c := range conn.Commands() {
		if strings.Contains(c, "kubectl") {
			kubectl++
		}
	}
	if kubectl != saved.Attempts {
		t.Errorf("asked %d times, want %d", kubectl, saved.Attempts)
	}
}
