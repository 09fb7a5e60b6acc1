package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// kk node facts on a host without an NVIDIA driver (this one) says so in its JSON, and the
// command stays out of kk's help.
func TestNodeFactsWithoutDriver(t *testing.T) {
	if _, err := os.Stat("/proc/driver/nvidia"); err == nil {
		t.Skip("this host has an NVIDIA driver")
	}
	out, err := kk(t, "node", "facts")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		NoDriver bool  `json:"noDriver"`
		GPUs     []any `json:"gpus"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || !got.NoDriver || len(got.GPUs) != 0 {
		t.Errorf("kk node facts: %v\n%s", err, out)
	}
	help, _ := kk(t, "--help")
	if strings.Contains(help, "\n  node ") {
		t.Errorf("the hidden node command is in the help:\n%s", help)
	}
}
