package gpu

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

// TaskExporter runs kk's GPU exporter on each GPU host, or removes it where the file no longer
// asks for it.
const TaskExporter = "gpu/exporter"

// ExporterUnit is the exporter's systemd unit (kk on the host, RemoteKK node gpu-exporter).
const ExporterUnit = "kk-gpu-exporter.service"

const exporterUnitPath = "/etc/systemd/system/" + ExporterUnit

// ExporterSpec says where kk's GPU exporter runs.
type ExporterSpec struct {
	// Enabled is spec.gpu's exporter switch: off, the task removes what an earlier run put.
	Enabled bool
	// Self is the kk that runs as the exporter, on the GPU hosts of its arch (the others get
	// none, with a warning).
	Self Self
	// GPUHosts tells the GPU hosts.
	GPUHosts Hosts
	// Addresses are the hosts' internal addresses, by name: each exporter serves on its
	// host's, port ExporterPort.
	Addresses map[string]string
}

// listen is where the exporter on host t serves.
func (s ExporterSpec) listen(t *pipeline.Target) string {
	return net.JoinHostPort(s.Addresses[t.Name], strconv.Itoa(ExporterPort))
}

// ExporterTask puts kk (RemoteKK) and its exporter's unit on every GPU host of kk's arch and
// runs it (a new kk restarts it: the unit names its sha256), then waits until it answers; the
// other hosts are left alone. Switched off, it stops and removes the unit everywhere.
func ExporterTask(s ExporterSpec, after []string) pipeline.Task {
	// kk's digest, read once when a GPU host first needs it (not for a plan without one)
	selfSum := sync.OnceValues(func() (string, error) {
		sum, _, err := download.FileSHA256(context.Background(), s.Self.Path)
		if err != nil {
			return "", fmt.Errorf("kk's own program (the GPU exporter): %w", err)
		}
		return sum, nil
	})
	// unit is t's unit file and kk's digest it names
	unit := func(t *pipeline.Target) (connector.File, string, error) {
		sum, err := selfSum()
		if err != nil {
			return connector.File{}, "", err
		}
		data, err := templates.Render("gpu/kk-gpu-exporter.service", map[string]string{
			"Program": RemoteKK, "Listen": s.listen(t), "Hostname": t.Name, "KKSHA256": sum,
		})
		return connector.File{Path: exporterUnitPath, Data: data, Mode: 0o644}, sum, err
	}
	// runs says whether t gets the exporter
	runs := func(t *pipeline.Target) bool {
		if !s.Enabled || !s.GPUHosts.Has(t) {
			return false
		}
		ok, why := s.Self.runsOn(t)
		if !ok {
			t.Log.Warn("no GPU exporter on this host: it runs kk itself there, and " + why)
		}
		return ok
	}
	const absent = "[ ! -e " + exporterUnitPath + " ]"
	desc := "kk's GPU exporter (NVML metrics on :" + strconv.Itoa(ExporterPort) + ") on the GPU hosts"
	if !s.Enabled {
		desc = "kk's GPU exporter removed where an earlier run put it"
	}
	return pipeline.Task{
		Name: TaskExporter, Desc: desc, Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if !runs(t) {
				return t.Test(ctx, absent)
			}
			f, sum, err := unit(t)
			if err != nil {
				return false, err
			}
			return t.Test(ctx, connector.FileTest(f)+" && echo "+sum+"' "+RemoteKK+"' | sha256sum -c --quiet - >/dev/null 2>&1"+
				" && systemctl is-enabled --quiet "+ExporterUnit+" && systemctl is-active --quiet "+ExporterUnit)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if !runs(t) {
				_, err := t.Sudo(ctx, "systemctl disable --now "+ExporterUnit+" >/dev/null 2>&1; rm -f "+exporterUnitPath+" && systemctl daemon-reload")
				return true, err
			}
			f, _, err := unit(t)
			if err != nil {
				return false, err
			}
			if _, err := t.Upload(ctx, connector.File{Path: RemoteKK, LocalPath: s.Self.Path, Mode: 0o755}); err != nil {
				return true, fmt.Errorf("put kk on the host (the GPU exporter): %w", err)
			}
			if _, err := t.Upload(ctx, f); err != nil {
				return true, err
			}
			addr := s.listen(t)
			host, port, _ := net.SplitHostPort(addr)
			// it answers once it listens: bash's /dev/tcp, as the host may have no curl
			if _, err := t.Sudo(ctx, "systemctl daemon-reload && systemctl enable -q "+ExporterUnit+" && systemctl restart "+ExporterUnit+
				" && for i in $(seq 30); do bash -c 'exec 3<>/dev/tcp/"+host+"/"+port+"' 2>/dev/null && exit 0; sleep 1; done; "+
				"echo 'kk-gpu-exporter does not listen on "+addr+" 30 s after its start:' >&2; journalctl -u "+ExporterUnit+" -n 20 --no-pager >&2; exit 1"); err != nil {
				return true, err
			}
			return true, nil
		},
	}
}
