// Package connectortest has a scripted connector for the unit tests of tasks.
package connectortest

import (
	"context"
	"maps"
	"strings"
	"sync"

	"github.com/kk-project/kk/pipeline/connector"
)

// Script is a connector.Connector that runs nothing: it records every command and answers
// with Answer's result where Answer is set and answers, else exit 1 to those that contain one
// of Fail, exit 0 to the others; it keeps the data of every upload (each reports a change)
// and Fetch returns it. Safe for concurrent use (Answer is called under its lock).
type Script struct {
	Fail []string
	// Answer, when set, answers the commands it knows (ok): its result's output and exit code
	// are the command's.
	Answer func(cmd string) (res connector.Result, ok bool)

	mu    sync.Mutex
	cmds  []string
	files map[string][]byte
}

var _ connector.Connector = (*Script)(nil)

// Exec implements connector.Connector.
func (c *Script) Exec(_ context.Context, cmd string, _ connector.ExecOptions) (connector.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cmds = append(c.cmds, cmd)
	if c.Answer != nil {
		if res, ok := c.Answer(cmd); ok {
			res.Cmd = cmd
			return res, nil
		}
	}
	for _, f := range c.Fail {
		if strings.Contains(cmd, f) {
			return connector.Result{Cmd: cmd, ExitCode: 1}, nil
		}
	}
	return connector.Result{Cmd: cmd}, nil
}

// Upload implements connector.Connector.
func (c *Script) Upload(_ context.Context, f connector.File) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.files == nil {
		c.files = map[string][]byte{}
	}
	c.files[f.Path] = f.Data
	return true, nil
}

// Fetch implements connector.Connector: the data uploaded to path, nil when none was.
func (c *Script) Fetch(_ context.Context, path string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.files[path], nil
}

// Close implements connector.Connector.
func (c *Script) Close() error { return nil }

// Commands are the commands run so far, in order.
func (c *Script) Commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.cmds...)
}

// Files are the files uploaded so far, by path.
func (c *Script) Files() map[string][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.files)
}
