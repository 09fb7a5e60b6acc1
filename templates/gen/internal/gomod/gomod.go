// Package gomod is what templates/gen's generators share: a Go module's folder.
package gomod

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Dir downloads module@version with the go command (the module proxy) and returns its folder
// in the module cache.
func Dir(module, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	outb, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", module, version, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(outb, &info); err != nil {
		return "", err
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", module, version, strings.TrimSpace(info.Error))
	}
	return info.Dir, nil
}
