package localcsi

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	registration "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// fakeMounter records bind mounts instead of making them.
type fakeMounter struct{ mounts map[string]string }

func (f *fakeMounter) Bind(src, target string, ro bool) error {
	f.mounts[target] = src
	if ro {
		f.mounts[target] += " ro"
	}
	return nil
}

func (f *fakeMounter) Unmount(target string) error { delete(f.mounts, target); return nil }

func (f *fakeMounter) Mounted(target string) (bool, error) { _, ok := f.mounts[target]; return ok, nil }

// shortDir is a temporary directory with a path short enough for a unix socket (108 bytes).
func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "csi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// serve starts d on a socket and returns a connection to it, as a sidecar has.
func serve(t *testing.T, d *Driver) *grpc.ClientConn {
	t.Helper()
	sock := filepath.Join(shortDir(t), "csi.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, d, "unix://"+sock) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return dialSocket(t, sock)
}

func newDriver(t *testing.T, node string) (*Driver, *fakeMounter) {
	t.Helper()
	m := &fakeMounter{mounts: map[string]string{}}
	d, err := New(Config{Name: DriverName, Version: "v0.1.0", NodeID: node, StateDir: t.TempDir(),
		MaxVolumeSize: 1 << 40}, m)
	if err != nil {
		t.Fatal(err)
	}
	return d, m
}

var mountRW = []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}}

func onNode(n string) *csi.TopologyRequirement {
	return &csi.TopologyRequirement{Requisite: []*csi.Topology{{Segments: map[string]string{TopologyKey: n}}}}
}

func code(err error) codes.Code { return status.Code(err) }

// The acceptance path, over the socket: a volume made for this node (as the provisioner of a
// WaitForFirstConsumer claim asks), data in it, a snapshot that is ready, a volume restored
// from it with the data, then everything deleted; the records survive a restart.
func TestVolumeSnapshotRestore(t *testing.T) {
	d, _ := newDriver(t, "n1")
	conn := serve(t, d)
	cc, ctx := csi.NewControllerClient(conn), context.Background()

	vol, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-1", VolumeCapabilities: mountRW,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}, AccessibilityRequirements: onNode("n1")})
	if err != nil {
		t.Fatal(err)
	}
	v := vol.GetVolume()
	if v.GetCapacityBytes() != 1<<20 || len(v.GetAccessibleTopology()) != 1 || v.GetAccessibleTopology()[0].GetSegments()[TopologyKey] != "n1" {
		t.Errorf("CreateVolume: %v", v)
	}
	dir := d.VolumePath(v.GetVolumeId())
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o777 {
		t.Fatalf("volume directory %s: %v %v", dir, fi, err)
	}
	again, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-1", VolumeCapabilities: mountRW,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}})
	if err != nil || again.GetVolume().GetVolumeId() != v.GetVolumeId() {
		t.Errorf("CreateVolume again: %v, %v; want the same volume", again, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "data"), []byte("kk"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/data", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	snap, err := cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-1", SourceVolumeId: v.GetVolumeId()})
	if err != nil {
		t.Fatal(err)
	}
	s := snap.GetSnapshot()
	if !s.GetReadyToUse() || s.GetSourceVolumeId() != v.GetVolumeId() || s.GetSizeBytes() <= 0 || s.GetCreationTime() == nil {
		t.Errorf("CreateSnapshot: %v", s)
	}
	if _, err := os.Stat(d.SnapshotPath(s.GetSnapshotId())); err != nil {
		t.Errorf("snapshot archive: %v", err)
	}
	if again, err := cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-1", SourceVolumeId: v.GetVolumeId()}); err != nil || again.GetSnapshot().GetSnapshotId() != s.GetSnapshotId() {
		t.Errorf("CreateSnapshot again: %v, %v", again, err)
	}
	if _, err := cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-2", SourceVolumeId: "vol-none"}); code(err) != codes.NotFound {
		t.Errorf("CreateSnapshot of an unknown volume: %v, want NotFound", err)
	}
	list, err := cc.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SourceVolumeId: v.GetVolumeId()})
	if err != nil || len(list.GetEntries()) != 1 || list.GetEntries()[0].GetSnapshot().GetSnapshotId() != s.GetSnapshotId() {
		t.Errorf("ListSnapshots: %v, %v", list, err)
	}

	restored, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-2", VolumeCapabilities: mountRW,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 20},
		VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: s.GetSnapshotId()}}}})
	if err != nil {
		t.Fatal(err)
	}
	rdir := d.VolumePath(restored.GetVolume().GetVolumeId())
	if b, err := os.ReadFile(filepath.Join(rdir, "link")); err != nil || string(b) != "kk" {
		t.Errorf("restored data through the link: %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(rdir, "sub", "data")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("restored file's mode: %v, %v", fi, err)
	}
	if _, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-3", VolumeCapabilities: mountRW,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 10},
		VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: s.GetSnapshotId()}}}}); code(err) != codes.OutOfRange {
		t.Errorf("restore into a smaller volume: %v, want OutOfRange", err)
	}

	// a restarted driver knows what the first one made
	d2, err := New(d.cfg, &fakeMounter{mounts: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d2.st.Volumes) != 2 || len(d2.st.Snapshots) != 1 {
		t.Errorf("reopened state: %d volumes, %d snapshots; want 2 and 1", len(d2.st.Volumes), len(d2.st.Snapshots))
	}

	if _, err := cc.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: s.GetSnapshotId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.SnapshotPath(s.GetSnapshotId())); !os.IsNotExist(err) {
		t.Errorf("snapshot archive after DeleteSnapshot: %v", err)
	}
	for _, id := range []string{v.GetVolumeId(), restored.GetVolume().GetVolumeId(), v.GetVolumeId()} {
		if _, err := cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
			t.Errorf("DeleteVolume %s: %v", id, err)
		}
		if _, err := os.Stat(d.VolumePath(id)); !os.IsNotExist(err) {
			t.Errorf("volume directory after DeleteVolume: %v", err)
		}
	}
}

// A volume is made only on the node the claim's pod was scheduled to, and block volumes or
// multi-node access are refused.
func TestCreateVolumeRefuses(t *testing.T) {
	d, _ := newDriver(t, "n1")
	ctx := context.Background()
	if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "p", VolumeCapabilities: mountRW, AccessibilityRequirements: onNode("n2")}); code(err) != codes.ResourceExhausted {
		t.Errorf("a volume for node n2 on n1: %v, want ResourceExhausted", err)
	}
	block := []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: mountRW[0].AccessMode}}
	many := []*csi.VolumeCapability{{AccessType: mountRW[0].AccessType,
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER}}}
	for what, caps := range map[string][]*csi.VolumeCapability{"block": block, "multi-node": many, "none": nil} {
		if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "p", VolumeCapabilities: caps}); code(err) != codes.InvalidArgument {
			t.Errorf("%s volume: %v, want InvalidArgument", what, err)
		}
	}
	if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "p", VolumeCapabilities: mountRW,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 41}}); code(err) != codes.OutOfRange {
		t.Errorf("a volume over the maximum: %v, want OutOfRange", err)
	}
	if len(d.st.Volumes) != 0 {
		t.Errorf("refused requests left volumes: %v", d.st.Volumes)
	}
	info, _ := d.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if info.GetNodeId() != "n1" || info.GetAccessibleTopology().GetSegments()[TopologyKey] != "n1" {
		t.Errorf("NodeGetInfo: %v", info)
	}
}

func controllerCaps(t *testing.T, d *Driver) []csi.ControllerServiceCapability_RPC_Type {
	resp, err := d.ControllerGetCapabilities(context.Background(), &csi.ControllerGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []csi.ControllerServiceCapability_RPC_Type
	for _, c := range resp.GetCapabilities() {
		out = append(out, c.GetRpc().GetType())
	}
	return out
}

// With controller expansion off (kk's DaemonSet), the controller does not advertise it, so
// external-resizer leaves the expansion to the node; the node's expansion grows the recorded
// capacity and never shrinks it.
func TestExpansion(t *testing.T) {
	d, _ := newDriver(t, "n1")
	ctx := context.Background()
	if slices.Contains(controllerCaps(t, d), csi.ControllerServiceCapability_RPC_EXPAND_VOLUME) {
		t.Error("controller advertises EXPAND_VOLUME with controller expansion off")
	}
	for _, c := range []csi.ControllerServiceCapability_RPC_Type{csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME, csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT} {
		if !slices.Contains(controllerCaps(t, d), c) {
			t.Errorf("controller does not advertise %s", c)
		}
	}
	nc, _ := d.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
	if !slices.ContainsFunc(nc.GetCapabilities(), func(c *csi.NodeServiceCapability) bool {
		return c.GetRpc().GetType() == csi.NodeServiceCapability_RPC_EXPAND_VOLUME
	}) {
		t.Errorf("node capabilities %v lack EXPAND_VOLUME", nc)
	}
	vol, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "p", VolumeCapabilities: mountRW, CapacityRange: &csi.CapacityRange{RequiredBytes: 100}})
	if err != nil {
		t.Fatal(err)
	}
	id := vol.GetVolume().GetVolumeId()
	if _, err := d.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csi.CapacityRange{RequiredBytes: 200}}); code(err) != codes.Unimplemented {
		t.Errorf("ControllerExpandVolume (expansion is the node's): %v, want Unimplemented", err)
	}
	for _, c := range []struct{ ask, want int64 }{{300, 300}, {200, 300}} {
		resp, err := d.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: id, CapacityRange: &csi.CapacityRange{RequiredBytes: c.ask}})
		if err != nil || resp.GetCapacityBytes() != c.want || d.st.Volumes[id].Capacity != c.want {
			t.Errorf("NodeExpandVolume to %d: %v, %v; want %d", c.ask, resp, err, c.want)
		}
	}
	if _, err := d.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: "vol-none", CapacityRange: &csi.CapacityRange{RequiredBytes: 1}}); code(err) != codes.NotFound {
		t.Errorf("NodeExpandVolume of an unknown volume: %v, want NotFound", err)
	}
}

// Publishing bind-mounts the volume's directory on the target (read-only when asked), twice
// is once, and a published volume is not deleted.
func TestPublish(t *testing.T) {
	d, m := newDriver(t, "n1")
	ctx := context.Background()
	vol, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "p", VolumeCapabilities: mountRW})
	if err != nil {
		t.Fatal(err)
	}
	id := vol.GetVolume().GetVolumeId()
	target := filepath.Join(t.TempDir(), "pods", "uid", "volumes", "mount")
	pub := &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: target, VolumeCapability: mountRW[0]}
	for i := 0; i < 2; i++ {
		if _, err := d.NodePublishVolume(ctx, pub); err != nil {
			t.Fatal(err)
		}
	}
	if m.mounts[target] != d.VolumePath(id) || len(m.mounts) != 1 {
		t.Errorf("mounts %v, want %s on %s", m.mounts, d.VolumePath(id), target)
	}
	if _, err := os.Stat(target); err != nil {
		t.Errorf("target not created: %v", err)
	}
	ro := &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: target + "-ro", VolumeCapability: mountRW[0], Readonly: true}
	if _, err := d.NodePublishVolume(ctx, ro); err != nil || m.mounts[target+"-ro"] != d.VolumePath(id)+" ro" {
		t.Errorf("read-only publish: %v, mounts %v", err, m.mounts)
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); code(err) != codes.FailedPrecondition {
		t.Errorf("DeleteVolume while published: %v, want FailedPrecondition", err)
	}
	if _, err := d.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "vol-none", TargetPath: target, VolumeCapability: mountRW[0]}); code(err) != codes.NotFound {
		t.Errorf("publish an unknown volume: %v, want NotFound", err)
	}
	for _, tp := range []string{target, target + "-ro"} {
		if _, err := d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: tp}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(tp); !os.IsNotExist(err) {
			t.Errorf("target %s left after unpublish: %v", tp, err)
		}
	}
	if len(m.mounts) != 0 {
		t.Errorf("mounts left: %v", m.mounts)
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Errorf("DeleteVolume after unpublish: %v", err)
	}
}

// BindMounter on this machine, where it may mount (as root in a mount namespace of its own):
// what is written through the target lands in the volume's directory.
func TestBindMounter(t *testing.T) {
	src, target := t.TempDir(), t.TempDir()
	var bm BindMounter
	if err := bm.Bind(src, target, false); err != nil {
		t.Skipf("cannot bind mount here: %v", err)
	}
	defer bm.Unmount(target)
	if ok, err := bm.Mounted(target); err != nil || !ok {
		t.Errorf("Mounted(%s) = %v, %v after Bind", target, ok, err)
	}
	if err := os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "f")); err != nil {
		t.Errorf("the file written through the mount is not in the source: %v", err)
	}
	if err := bm.Unmount(target); err != nil {
		t.Fatal(err)
	}
	if ok, _ := bm.Mounted(target); ok {
		t.Errorf("%s still mounted", target)
	}
}

func TestMountedIn(t *testing.T) {
	info := "22 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n" +
		"30 22 0:21 /vol /var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pvc\\040a/mount rw - ext4 /dev/vda rw\n"
	for p, want := range map[string]bool{"/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pvc a/mount": true,
		"/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pvc a/mount/": true, "/var/lib/kubelet": false} {
		if got := mountedIn(info, p); got != want {
			t.Errorf("mountedIn(%q) = %v, want %v", p, got, want)
		}
	}
}

// A snapshot archive whose member climbs out of the volume is refused.
func TestUntarRefusesEscape(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.snap")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "../escaped", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	zw.Close()
	f.Close()
	dir := t.TempDir()
	if err := Untar(p, dir); err == nil {
		t.Error("Untar accepted ../escaped")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escaped")); !os.IsNotExist(err) {
		t.Errorf("a file escaped the volume: %v", err)
	}
}

// The registrar tells the kubelet (here a test client on the registration socket) the driver's
// name and its socket's host path; the kubelet's refusal reaches Registered.
func TestRegistrar(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	told := make(chan error, 1)
	r := &Registrar{KubeletPath: "/var/lib/kubelet/plugins/" + DriverName + "/csi.sock", Dir: shortDir(t),
		Registered: func(err error) { told <- err }}
	tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
	defer tcancel()
	name := DriverName
	go r.Serve(ctx, name)
	sock := r.SocketFor(name)
	if filepath.Base(sock) != DriverName+"-reg.sock" {
		t.Errorf("registration socket %s", sock)
	}
	conn := dialSocket(t, sock)
	kubelet := registration.NewRegistrationClient(conn)
	info, err := kubelet.GetInfo(tctx, &registration.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetType() != registration.CSIPlugin || info.GetName() != name || info.GetEndpoint() != r.KubeletPath || !slices.Contains(info.GetSupportedVersions(), "1.0.0") {
		t.Errorf("GetInfo: %v", info)
	}
	if _, err := kubelet.NotifyRegistrationStatus(tctx, &registration.RegistrationStatus{PluginRegistered: false, Error: "no"}); err != nil {
		t.Fatal(err)
	}
	if err := <-told; err == nil {
		t.Error("a refusal reached Registered as nil")
	}
}

func TestSocketPath(t *testing.T) {
	for in, want := range map[string]string{"unix:///csi/csi.sock": "/csi/csi.sock", "unix://tmp/csi.sock": "/tmp/csi.sock", "/csi/csi.sock": "/csi/csi.sock"} {
		if got, err := SocketPath(in); err != nil || got != want {
			t.Errorf("SocketPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"tcp://127.0.0.1:10000", "unix://"} {
		if _, err := SocketPath(bad); err == nil {
			t.Errorf("SocketPath(%q): no error", bad)
		}
	}
}

// dialSocket waits for the unix socket sock to appear and dials it; the connection is closed
// when t ends.
func dialSocket(t *testing.T, sock string) *grpc.ClientConn {
	t.Helper()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
