package gpu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// recording is a host that records what it was asked and what each upload wrote; the tasks'
// checks (the unit compared, or absent) answer checks, every step 0.
type recording struct {
	scripted
	checks int
	files  map[string]string
}

func (r *recording) Exec(ctx context.Context, cmd string, o connector.ExecOptions) (connector.Result, error) {
	res, err := r.scripted.Exec(ctx, cmd, o)
	res.ExitCode = 0
	if strings.HasPrefix(cmd, "[ -f "+connector.Quote(exporterUnitPath)) || strings.HasPrefix(cmd, "[ ! -e ") {
		res.ExitCode = r.checks
	}
	return res, err
}

func (r *recording) Upload(ctx context.Context, f connector.File) (bool, error) {
	r.mu.Lock()
	r.files[f.Path] = string(f.Data)
	r.mu.Unlock()
	return r.scripted.Upload(ctx, f)
}

// exporterHosts are g1 (GPUs on its bus), d1 (declared a GPU host), c1 (no GPU) and a1 (GPUs,
// arm64), each answering the exporter task's checks with codes[its name].
func exporterHosts(codes map[string]int) ([]*pipeline.Host, map[string]*recording) {
	conns := map[string]*recording{}
	var hosts []*pipeline.Host
	for _, n := range []string{"g1", "d1", "c1", "a1"} {
		c := &recording{checks: codes[n], files: map[string]string{}}
		conns[n] = c
		h := pipeline.NewHost(n, nil, func(context.Context) (connector.Connector, error) { return c, nil })
		f := &pipeline.Facts{Arch: "amd64", PackageManager: "apt-get", Init: "systemd", Privileged: true}
		if n == "g1" || n == "a1" {
			f.NvidiaPCI = []string{"0000:17:00.0 0x2330"}
		}
		if n == "a1" {
			f.Arch = "arm64"
		}
		h.SetFacts(f)
		hosts = append(hosts, h)
	}
	return hosts, conns
}

// TestExporterTask: kk and the exporter's unit go on the GPU hosts of kk's arch (on the bus or
// declared), listening on each one's internal address and naming kk's digest; the unit is
// started and must answer. Hosts without a GPU are only checked for a unit to remove, and an
// arm64 GPU host gets none (this kk is amd64). Switched off, the unit goes from every host.
func TestExporterTask(t *testing.T) {
	self := filepath.Join(t.TempDir(), "kk")
	if err := os.WriteFile(self, []byte("kk's program"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum, _, err := download.FileSHA256(context.Background(), self)
	if err != nil {
		t.Fatal(err)
	}
	spec := ExporterSpec{Enabled: true, Self: Self{Path: self, Arch: "amd64"}, GPUHosts: Hosts{Declared: []string{"d1"}},
		Addresses: map[string]string{"g1": "10.0.0.1", "d1": "10.0.0.2", "c1": "10.0.0.3", "a1": "10.0.0.4"}}
	task := ExporterTask(spec, nil)
	// nothing there yet: the GPU hosts' checks fail, the others find no unit
	hosts, conns := exporterHosts(map[string]int{"g1": 1, "d1": 1})
	rep := runTasks(t, []pipeline.Task{task}, hosts, false)
	for _, r := range rep.Results {
		want := pipeline.StatusChanged
		if r.Host == "c1" || r.Host == "a1" {
			want = pipeline.StatusOK
		}
		if r.Status != want {
			t.Errorf("%s on %s: %s, want %s (%v)", r.Task, r.Host, r.Status, want, r.Err)
		}
	}
	for n, addr := range map[string]string{"g1": "10.0.0.1", "d1": "10.0.0.2"} {
		unit := conns[n].files[exporterUnitPath]
		if !strings.Contains(unit, "ExecStart="+RemoteKK+" node gpu-exporter --listen "+addr+":9835 --hostname "+n+"\n") || !strings.Contains(unit, "# kk "+sum+"\n") {
			t.Errorf("%s: unit\n%s", n, unit)
		}
		cmds := strings.Join(conns[n].cmds, "\n")
		if !strings.Contains(cmds, "UPLOAD "+RemoteKK) || !strings.Contains(cmds, "systemctl restart "+ExporterUnit) || !strings.Contains(cmds, "/dev/tcp/"+addr+"/9835") {
			t.Errorf("%s: commands\n%s", n, cmds)
		}
	}
	for _, n := range []string{"c1", "a1"} {
		if cmds := conns[n].cmds; len(cmds) != 1 || cmds[0] != "[ ! -e "+exporterUnitPath+" ]" {
			t.Errorf("%s (no exporter) was asked %q, want only whether a unit is left", n, cmds)
		}
	}

	// off: every host where a unit is left loses it, kk's program aside
	spec.Enabled = false
	task = ExporterTask(spec, nil)
	hosts, conns = exporterHosts(map[string]int{"g1": 1, "d1": 1, "c1": 1, "a1": 1})
	runTasks(t, []pipeline.Task{task}, hosts, false)
	for n, c := range conns {
		cmds := strings.Join(c.cmds, "\n")
		if !strings.Contains(cmds, "systemctl disable --now "+ExporterUnit) || !strings.Contains(cmds, "rm -f "+exporterUnitPath) || strings.Contains(cmds, "UPLOAD") {
			t.Errorf("%s, exporter off: commands\n%s", n, cmds)
		}
	}
}
