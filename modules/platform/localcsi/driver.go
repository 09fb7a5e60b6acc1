// Package localcsi is kk's local volume driver, a CSI driver that the platform's local storage
// runs on every node (cmd/kk-local-csi, image ghcr.io/kk-project/kk-local-csi) under the
// Kubernetes CSI sidecars built from their upstream modules (external-provisioner,
// external-snapshotter, external-resizer, snapshot-controller). kk ships its own driver because
// no local-volume CSI driver can be obtained here (the module proxy serves neither the CSI
// hostpath driver nor OpenEBS's, TopoLVM's or the NFS driver), while a snapshot needs one;
// it serves kubelet's plugin registration itself, so no node-driver-registrar is needed.
//
// What it does: a volume is a directory <statedir>/<id> on the node the driver runs on,
// published by a bind mount onto the pod's target path; the node's topology segment
// (TopologyKey=<nodeid>) pins each volume to its node; a snapshot is a gzip'ed tar of the
// volume's directory, <statedir>/<id>.snap, and a volume can be made from one; expansion
// changes the recorded capacity only (a directory has no size of its own). The records live in
// <statedir>/kk-local-csi-state.json, so volumes and snapshots outlive a restart of the driver.
//
// Left out, as kk's template uses none of it: block volumes, ephemeral inline volumes,
// attach/detach, capacity tracking, group snapshots, volume attributes classes.
package localcsi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DriverName is the driver's CSI name, the provisioner of kk's StorageClass "local".
const DriverName = "local.csi.kk.kubesphere.io"

// TopologyKey is the topology segment every volume carries: the node it lives on.
const TopologyKey = "topology.local.csi.kk.kubesphere.io/node"

// stateFile is where the driver keeps its records, under the state directory.
const stateFile = "kk-local-csi-state.json"

// Config is what the driver's flags set.
type Config struct {
	Name, Version, NodeID, StateDir string
	// MaxVolumeSize bounds a volume's capacity (bytes); MaxVolumesPerNode the node's volumes
	// (0: no limit).
	MaxVolumeSize     int64
	MaxVolumesPerNode int64
}

// Volume and Snapshot are the driver's records.
type Volume struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Capacity int64  `json:"capacity"`
	// Published are the target paths it is bind-mounted on, and whether read-only.
	Published map[string]bool `json:"published,omitempty"`
}

// Snapshot is one snapshot: a gzip'ed tar of its source volume's directory.
type Snapshot struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	SourceID string    `json:"sourceID"`
	Created  time.Time `json:"created"`
	Size     int64     `json:"size"`
}

type state struct {
	Volumes   map[string]*Volume   `json:"volumes"`
	Snapshots map[string]*Snapshot `json:"snapshots"`
}

// Driver serves CSI's identity, controller and node services. Its methods are safe for
// concurrent use: one lock guards the records, as the sidecars call in parallel.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	cfg   Config
	mount Mounter
	mu    sync.Mutex
	st    state
}

// New opens (or creates) the driver's state under cfg.StateDir.
func New(cfg Config, m Mounter) (*Driver, error) {
	if cfg.Name == "" || cfg.NodeID == "" {
		return nil, errors.New("kk-local-csi: the driver name and the node id must be set")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("kk-local-csi: state directory: %w", err)
	}
	d := &Driver{cfg: cfg, mount: m, st: state{Volumes: map[string]*Volume{}, Snapshots: map[string]*Snapshot{}}}
	data, err := os.ReadFile(filepath.Join(cfg.StateDir, stateFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("kk-local-csi: %w", err)
	default:
		if err := json.Unmarshal(data, &d.st); err != nil {
			return nil, fmt.Errorf("kk-local-csi: %s: %w", stateFile, err)
		}
	}
	return d, nil
}

// save writes the records atomically; the caller holds d.mu.
func (d *Driver) save() error {
	data, err := json.MarshalIndent(d.st, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(d.cfg.StateDir, stateFile)
	if err := os.WriteFile(p+".tmp", data, 0o600); err != nil {
		return status.Errorf(codes.Internal, "save state: %v", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return status.Errorf(codes.Internal, "save state: %v", err)
	}
	return nil
}

// id derives a volume's or snapshot's ID from its name and the node: the same request gives
// the same ID (the sidecars retry), and two nodes never give the same one.
func (d *Driver) id(kind, name string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + d.cfg.NodeID + "\x00" + name))
	return kind + "-" + hex.EncodeToString(sum[:12])
}

// VolumePath is where volume id's data lives.
func (d *Driver) VolumePath(id string) string { return filepath.Join(d.cfg.StateDir, id) }

// SnapshotPath is where snapshot id's archive lives.
func (d *Driver) SnapshotPath(id string) string { return filepath.Join(d.cfg.StateDir, id+".snap") }

// topology is the segment that pins every volume to this node.
func (d *Driver) topology() []*csi.Topology {
	return []*csi.Topology{{Segments: map[string]string{TopologyKey: d.cfg.NodeID}}}
}

// Identity service.

// GetPluginInfo names the driver.
func (d *Driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: d.cfg.Name, VendorVersion: d.cfg.Version}, nil
}

// GetPluginCapabilities: a controller service, topology (each volume lives on its node), and
// online expansion. The expansion is the node's alone: without the controller's EXPAND_VOLUME,
// external-resizer only marks a claim for it, and the kubelet of the volume's node asks this
// driver (NodeExpandVolume); ControllerExpandVolume is left unimplemented.
func (d *Driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{
		{Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: csi.PluginCapability_Service_CONTROLLER_SERVICE}}},
		{Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS}}},
		{Type: &csi.PluginCapability_VolumeExpansion_{VolumeExpansion: &csi.PluginCapability_VolumeExpansion{Type: csi.PluginCapability_VolumeExpansion_ONLINE}}},
	}}, nil
}

// Probe: the driver is ready once its state is open.
func (d *Driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

// Controller service.

// ControllerGetCapabilities lists what the controller service does.
func (d *Driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	types := []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
		csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: rpcCaps(types)}, nil
}

func rpcCaps(types []csi.ControllerServiceCapability_RPC_Type) []*csi.ControllerServiceCapability {
	var out []*csi.ControllerServiceCapability
	for _, t := range types {
		out = append(out, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{
			Rpc: &csi.ControllerServiceCapability_RPC{Type: t}}})
	}
	return out
}

// checkCapabilities accepts filesystem volumes used by one node (a directory is no block
// device, and it exists on one node only).
func checkCapabilities(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return status.Error(codes.InvalidArgument, "volume capabilities missing")
	}
	for _, c := range caps {
		if c.GetBlock() != nil {
			return status.Error(codes.InvalidArgument, "block volumes are not supported: a volume is a directory")
		}
		if c.GetMount() == nil {
			return status.Error(codes.InvalidArgument, "access type missing: want mount")
		}
		switch m := c.GetAccessMode().GetMode(); m {
		case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER, csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
		default:
			return status.Errorf(codes.InvalidArgument, "access mode %s: a node-local volume serves one node", m)
		}
	}
	return nil
}

// capacity picks a volume's size from the request: the required bytes, else the limit, else
// 1 GiB, within the driver's maximum.
func (d *Driver) capacity(r *csi.CapacityRange) (int64, error) {
	req, limit := r.GetRequiredBytes(), r.GetLimitBytes()
	if req < 0 || limit < 0 || (limit > 0 && req > limit) {
		return 0, status.Errorf(codes.InvalidArgument, "capacity range %d..%d", req, limit)
	}
	size := req
	if size == 0 {
		size = limit
	}
	if size == 0 {
		size = 1 << 30
	}
	if d.cfg.MaxVolumeSize > 0 && size > d.cfg.MaxVolumeSize {
		return 0, status.Errorf(codes.OutOfRange, "%d bytes requested, at most %d", size, d.cfg.MaxVolumeSize)
	}
	return size, nil
}

// onThisNode reports whether the accessibility requirements admit this node (none do too).
func (d *Driver) onThisNode(req *csi.TopologyRequirement) bool {
	if req == nil || len(req.GetRequisite())+len(req.GetPreferred()) == 0 {
		return true
	}
	for _, t := range append(req.GetRequisite(), req.GetPreferred()...) {
		if v, ok := t.GetSegments()[TopologyKey]; ok && v == d.cfg.NodeID {
			return true
		}
	}
	return false
}

// CreateVolume makes the volume's directory, empty or filled from a snapshot or a volume of
// this node.
func (d *Driver) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume name missing")
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	size, err := d.capacity(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	if !d.onThisNode(req.GetAccessibilityRequirements()) {
		return nil, status.Errorf(codes.ResourceExhausted, "node %s is not among the volume's accessible topologies", d.cfg.NodeID)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id := d.id("vol", req.GetName())
	if v, ok := d.st.Volumes[id]; ok {
		if v.Capacity < req.GetCapacityRange().GetRequiredBytes() {
			return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with %d bytes", req.GetName(), v.Capacity)
		}
		return d.created(v, req.GetVolumeContentSource()), nil
	}
	if d.cfg.MaxVolumesPerNode > 0 && int64(len(d.st.Volumes)) >= d.cfg.MaxVolumesPerNode {
		return nil, status.Errorf(codes.ResourceExhausted, "node %s holds its maximum of %d volumes", d.cfg.NodeID, d.cfg.MaxVolumesPerNode)
	}
	dir := d.VolumePath(id)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, status.Errorf(codes.Internal, "create %s: %v", dir, err)
	}
	// pods of any user may write it, as a fresh emptyDir
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, status.Errorf(codes.Internal, "chmod %s: %v", dir, err)
	}
	if err := d.fill(dir, req.GetVolumeContentSource(), size); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	v := &Volume{ID: id, Name: req.GetName(), Capacity: size}
	d.st.Volumes[id] = v
	if err := d.save(); err != nil {
		return nil, err
	}
	return d.created(v, req.GetVolumeContentSource()), nil
}

func (d *Driver) created(v *Volume, src *csi.VolumeContentSource) *csi.CreateVolumeResponse {
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{VolumeId: v.ID, CapacityBytes: v.Capacity,
		ContentSource: src, AccessibleTopology: d.topology()}}
}

// fill copies a content source into the new volume's directory; the caller holds d.mu.
func (d *Driver) fill(dir string, src *csi.VolumeContentSource, size int64) error {
	switch {
	case src == nil:
		return nil
	case src.GetSnapshot() != nil:
		s, ok := d.st.Snapshots[src.GetSnapshot().GetSnapshotId()]
		if !ok {
			return status.Errorf(codes.NotFound, "snapshot %s is not on node %s", src.GetSnapshot().GetSnapshotId(), d.cfg.NodeID)
		}
		if sv, ok := d.st.Volumes[s.SourceID]; ok && sv.Capacity > size {
			return status.Errorf(codes.OutOfRange, "snapshot %s is of a %d-byte volume, more than %d", s.ID, sv.Capacity, size)
		}
		if err := Untar(d.SnapshotPath(s.ID), dir); err != nil {
			return status.Errorf(codes.Internal, "restore snapshot %s: %v", s.ID, err)
		}
	case src.GetVolume() != nil:
		sv, ok := d.st.Volumes[src.GetVolume().GetVolumeId()]
		if !ok {
			return status.Errorf(codes.NotFound, "volume %s is not on node %s", src.GetVolume().GetVolumeId(), d.cfg.NodeID)
		}
		if sv.Capacity > size {
			return status.Errorf(codes.OutOfRange, "volume %s has %d bytes, more than %d", sv.ID, sv.Capacity, size)
		}
		if err := CopyTree(d.VolumePath(sv.ID), dir); err != nil {
			return status.Errorf(codes.Internal, "clone volume %s: %v", sv.ID, err)
		}
	}
	return nil
}

// DeleteVolume removes the volume's directory; an unknown volume is gone already.
func (d *Driver) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id missing")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.st.Volumes[req.GetVolumeId()]
	if !ok {
		return &csi.DeleteVolumeResponse{}, nil
	}
	if len(v.Published) > 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is still published at %s", v.ID, strings.Join(sortedKeys(v.Published), ", "))
	}
	if err := os.RemoveAll(d.VolumePath(v.ID)); err != nil {
		return nil, status.Errorf(codes.Internal, "remove volume %s: %v", v.ID, err)
	}
	delete(d.st.Volumes, v.ID)
	return &csi.DeleteVolumeResponse{}, d.save()
}

// ValidateVolumeCapabilities confirms what checkCapabilities accepts.
func (d *Driver) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id missing")
	}
	d.mu.Lock()
	_, ok := d.st.Volumes[req.GetVolumeId()]
	d.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s is not on node %s", req.GetVolumeId(), d.cfg.NodeID)
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext: req.GetVolumeContext(), VolumeCapabilities: req.GetVolumeCapabilities(), Parameters: req.GetParameters()}}, nil
}

// expand grows volume id's recorded capacity; it never shrinks.
func (d *Driver) expand(id string, r *csi.CapacityRange) (int64, error) {
	if id == "" {
		return 0, status.Error(codes.InvalidArgument, "volume id missing")
	}
	if r == nil {
		return 0, status.Error(codes.InvalidArgument, "capacity range missing")
	}
	size, err := d.capacity(r)
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.st.Volumes[id]
	if !ok {
		return 0, status.Errorf(codes.NotFound, "volume %s is not on node %s", id, d.cfg.NodeID)
	}
	if size > v.Capacity {
		v.Capacity = size
		if err := d.save(); err != nil {
			return 0, err
		}
	}
	return v.Capacity, nil
}

// CreateSnapshot archives the source volume's directory.
func (d *Driver) CreateSnapshot(_ context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot name missing")
	}
	if req.GetSourceVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "source volume id missing")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id := d.id("snap", req.GetName())
	if s, ok := d.st.Snapshots[id]; ok {
		if s.SourceID != req.GetSourceVolumeId() {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %s exists of volume %s", req.GetName(), s.SourceID)
		}
		return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(s)}, nil
	}
	if _, ok := d.st.Volumes[req.GetSourceVolumeId()]; !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s is not on node %s", req.GetSourceVolumeId(), d.cfg.NodeID)
	}
	size, err := Tar(d.VolumePath(req.GetSourceVolumeId()), d.SnapshotPath(id))
	if err != nil {
		os.Remove(d.SnapshotPath(id))
		return nil, status.Errorf(codes.Internal, "snapshot volume %s: %v", req.GetSourceVolumeId(), err)
	}
	s := &Snapshot{ID: id, Name: req.GetName(), SourceID: req.GetSourceVolumeId(), Created: time.Now().UTC(), Size: size}
	d.st.Snapshots[id] = s
	if err := d.save(); err != nil {
		return nil, err
	}
	return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(s)}, nil
}

func csiSnapshot(s *Snapshot) *csi.Snapshot {
	return &csi.Snapshot{SnapshotId: s.ID, SourceVolumeId: s.SourceID, SizeBytes: s.Size,
		CreationTime: timestamppb.New(s.Created), ReadyToUse: true}
}

// DeleteSnapshot removes the archive; an unknown snapshot is gone already.
func (d *Driver) DeleteSnapshot(_ context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot id missing")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.st.Snapshots[req.GetSnapshotId()]; !ok {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	if err := os.Remove(d.SnapshotPath(req.GetSnapshotId())); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "remove snapshot %s: %v", req.GetSnapshotId(), err)
	}
	delete(d.st.Snapshots, req.GetSnapshotId())
	return &csi.DeleteSnapshotResponse{}, d.save()
}

// ListSnapshots lists this node's snapshots, or one, or those of one volume, in ID order and
// in pages of max_entries (the token is the index of the next entry).
func (d *Driver) ListSnapshots(_ context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	d.mu.Lock()
	var all []*Snapshot
	for _, s := range d.st.Snapshots {
		if (req.GetSnapshotId() == "" || s.ID == req.GetSnapshotId()) && (req.GetSourceVolumeId() == "" || s.SourceID == req.GetSourceVolumeId()) {
			all = append(all, s)
		}
	}
	d.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	start := 0
	if t := req.GetStartingToken(); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || n > len(all) {
			return nil, status.Errorf(codes.Aborted, "starting token %q", t)
		}
		start = n
	}
	end := len(all)
	if m := int(req.GetMaxEntries()); m > 0 && start+m < end {
		end = start + m
	}
	resp := &csi.ListSnapshotsResponse{}
	for _, s := range all[start:end] {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: csiSnapshot(s)})
	}
	if end < len(all) {
		resp.NextToken = strconv.Itoa(end)
	}
	return resp, nil
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
