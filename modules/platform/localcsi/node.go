package localcsi

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Mounter makes and removes the bind mounts that publish a volume.
type Mounter interface {
	// Bind mounts src onto target, read-only when ro.
	Bind(src, target string, ro bool) error
	// Unmount removes the mount on target.
	Unmount(target string) error
	// Mounted reports whether target is a mount point.
	Mounted(target string) (bool, error)
}

// BindMounter is the Mounter of a real node: bind mounts made in the driver's mount
// namespace, which reach the kubelet only through a bidirectionally propagated mount of the
// kubelet's pods directory (kk's DaemonSet mounts it so, as upstream's does).
type BindMounter struct{}

// Bind bind-mounts src onto target, then remounts it read-only when ro (a bind mount takes
// MS_RDONLY only on a remount).
func (BindMounter) Bind(src, target string, ro bool) error {
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	if ro {
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			_ = unix.Unmount(target, 0)
			return err
		}
	}
	return nil
}

// Unmount unmounts target.
func (BindMounter) Unmount(target string) error { return unix.Unmount(target, 0) }

// Mounted compares target's device and inode with its parent's: a bind mount of a directory
// of the same filesystem keeps the device, so the mount table decides then.
func (BindMounter) Mounted(target string) (bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	return mountedIn(string(data), target), nil
}

// NodeGetInfo names the node and its topology segment.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: d.cfg.NodeID, MaxVolumesPerNode: d.cfg.MaxVolumesPerNode,
		AccessibleTopology: d.topology()[0]}, nil
}

// NodeGetCapabilities: volume statistics and expansion.
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	types := []csi.NodeServiceCapability_RPC_Type{csi.NodeServiceCapability_RPC_GET_VOLUME_STATS, csi.NodeServiceCapability_RPC_EXPAND_VOLUME}
	var caps []*csi.NodeServiceCapability
	for _, t := range types {
		caps = append(caps, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: t}}})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

// NodePublishVolume bind-mounts the volume's directory onto the target path, which it creates
// (CSI leaves that to the driver; the kubelet makes its parent).
func (d *Driver) NodePublishVolume(_ context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if id == "" || target == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id and target path must be set")
	}
	if req.GetVolumeCapability() == nil {
		return nil, status.Error(codes.InvalidArgument, "volume capability missing")
	}
	if err := checkCapabilities([]*csi.VolumeCapability{req.GetVolumeCapability()}); err != nil {
		return nil, err
	}
	ro := req.GetReadonly() || req.GetVolumeCapability().GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.st.Volumes[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s is not on node %s", id, d.cfg.NodeID)
	}
	if was, ok := v.Published[target]; ok {
		if was != ro {
			return nil, status.Errorf(codes.AlreadyExists, "volume %s is published at %s with read-only %v", id, target, was)
		}
		if m, err := d.mount.Mounted(target); err == nil && m {
			return &csi.NodePublishVolumeResponse{}, nil
		}
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "create target %s: %v", target, err)
	}
	if m, err := d.mount.Mounted(target); err != nil {
		return nil, status.Errorf(codes.Internal, "read mounts: %v", err)
	} else if !m {
		if err := d.mount.Bind(d.VolumePath(id), target, ro); err != nil {
			return nil, status.Errorf(codes.Internal, "bind %s on %s: %v", d.VolumePath(id), target, err)
		}
	}
	if v.Published == nil {
		v.Published = map[string]bool{}
	}
	v.Published[target] = ro
	return &csi.NodePublishVolumeResponse{}, d.save()
}

// NodeUnpublishVolume unmounts the target path and removes it.
func (d *Driver) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if id == "" || target == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id and target path must be set")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	m, err := d.mount.Mounted(target)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "read mounts: %v", err)
	}
	if m {
		if err := d.mount.Unmount(target); err != nil {
			return nil, status.Errorf(codes.Internal, "unmount %s: %v", target, err)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "remove %s: %v", target, err)
	}
	if v, ok := d.st.Volumes[id]; ok && v.Published != nil {
		delete(v.Published, target)
		return &csi.NodeUnpublishVolumeResponse{}, d.save()
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// NodeExpandVolume records the new capacity: a directory needs no resizing of a filesystem.
func (d *Driver) NodeExpandVolume(_ context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	size, err := d.expand(req.GetVolumeId(), req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
}

// NodeGetVolumeStats reports the volume's filesystem (shared by every volume of the node, as
// they are directories of one filesystem) for the kubelet's volume metrics.
func (d *Driver) NodeGetVolumeStats(_ context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	if req.GetVolumeId() == "" || req.GetVolumePath() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id and path must be set")
	}
	d.mu.Lock()
	_, ok := d.st.Volumes[req.GetVolumeId()]
	d.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s is not on node %s", req.GetVolumeId(), d.cfg.NodeID)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(req.GetVolumePath(), &fs); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, status.Errorf(codes.NotFound, "volume path %s: %v", req.GetVolumePath(), err)
		}
		return nil, status.Errorf(codes.Internal, "statfs %s: %v", req.GetVolumePath(), err)
	}
	bs := int64(fs.Bsize)
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: int64(fs.Blocks) * bs, Available: int64(fs.Bavail) * bs, Used: int64(fs.Blocks-fs.Bfree) * bs},
		{Unit: csi.VolumeUsage_INODES, Total: int64(fs.Files), Available: int64(fs.Ffree), Used: int64(fs.Files - fs.Ffree)},
	}}, nil
}

// mountedIn reports whether path is a mount point in the mountinfo text (field 5 of each
// line, octal escapes as the kernel writes them).
func mountedIn(mountinfo, path string) bool {
	path = filepath.Clean(path)
	for _, line := range splitLines(mountinfo) {
		f := splitFields(line)
		if len(f) > 4 && unescapeMount(f[4]) == path {
			return true
		}
	}
	return false
}
