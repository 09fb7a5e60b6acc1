// Package play defines the benchmark's 3-task play once, so that kkplay, the ansible playbook
// and the checks of the bench driver agree on paths, bytes and rendered text.
package play

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"path"

	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

// BlobSize is the size of the uploaded file: 1 MiB.
const BlobSize = 1 << 20

// DefaultRoot is the directory under which every host writes its own subdirectory. Light
// hosts share this machine's filesystem, so the per-host directory keeps them apart.
const DefaultRoot = "/tmp/kkbench"

// UnitTemplate is the kk template (templates/files/bench/kkbench.service) of the unit.
const UnitTemplate = "bench/kkbench.service"

// Blob returns the deterministic 1 MiB payload: the sha256 of a counter, block after block
// (incompressible, so a transport cannot shortcut it by compression).
func Blob() []byte {
	b := make([]byte, 0, BlobSize)
	var ctr [8]byte
	for i := uint64(0); len(b) < BlobSize; i++ {
		binary.BigEndian.PutUint64(ctr[:], i)
		s := sha256.Sum256(ctr[:])
		b = append(b, s[:]...)
	}
	return b[:BlobSize]
}

// BlobSHA256 is the hex sha256 of Blob().
func BlobSHA256() string {
	s := sha256.Sum256(Blob())
	return hex.EncodeToString(s[:])
}

// Dir is the host's own directory under root.
func Dir(root, host string) string { return path.Join(root, host) }

// BlobPath is where the payload goes on host.
func BlobPath(root, host string) string { return path.Join(Dir(root, host), "blob") }

// UnitPath is where the rendered unit goes on host.
func UnitPath(root, host string) string { return path.Join(Dir(root, host), "kkbench.service") }

// Unit holds the fields of the rendered systemd unit.
type Unit struct {
	Host      string
	Address   string
	Dir       string
	MemoryMax string
	Nice      int
}

// Fixed values of the unit's tunables, shared with the Jinja2 twin of the template.
const (
	MemoryMax = "64M"
	Nice      = 10
)

// UnitFor returns the unit fields for one host.
func UnitFor(root, host, address string) Unit {
	return Unit{Host: host, Address: address, Dir: Dir(root, host), MemoryMax: MemoryMax, Nice: Nice}
}

// RenderUnit renders the unit with kk's template engine.
func RenderUnit(u Unit) ([]byte, error) { return templates.Render(UnitTemplate, u) }

// SumCommand is the play's third task: a read-only command on the uploaded file.
func SumCommand(root, host string) string {
	return connector.Cmd("sha256sum", "--", BlobPath(root, host))
}
