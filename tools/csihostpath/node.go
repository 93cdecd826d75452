package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func (d *driver) NodeGetCapabilities(context.Context, *csipb.NodeGetCapabilitiesRequest) (*csipb.NodeGetCapabilitiesResponse, error) {
	rpc := func(t csipb.NodeServiceCapability_RPC_Type) *csipb.NodeServiceCapability {
		return &csipb.NodeServiceCapability{Type: &csipb.NodeServiceCapability_Rpc{Rpc: &csipb.NodeServiceCapability_RPC{Type: t}}}
	}
	caps := []*csipb.NodeServiceCapability{
		rpc(csipb.NodeServiceCapability_RPC_GET_VOLUME_STATS),
		rpc(csipb.NodeServiceCapability_RPC_EXPAND_VOLUME),
	}
	if d.opts.stage {
		caps = append(caps, rpc(csipb.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME))
	}
	return &csipb.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

func (d *driver) NodeGetInfo(context.Context, *csipb.NodeGetInfoRequest) (*csipb.NodeGetInfoResponse, error) {
	resp := &csipb.NodeGetInfoResponse{NodeId: d.opts.nodeID, MaxVolumesPerNode: d.opts.maxVolumes}
	if d.opts.topologyKey != "" {
		resp.AccessibleTopology = &csipb.Topology{Segments: map[string]string{d.opts.topologyKey: d.opts.nodeID}}
	}
	return resp, nil
}

// NodeStageVolume bind-mounts the volume's directory on the staging path.
func (d *driver) NodeStageVolume(_ context.Context, req *csipb.NodeStageVolumeRequest) (*csipb.NodeStageVolumeResponse, error) {
	if !d.opts.stage {
		return nil, status.Error(codes.Unimplemented, "STAGE_UNSTAGE_VOLUME is not offered")
	}
	id, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := checkID(id); err != nil {
		return nil, err
	}
	if staging == "" || req.GetVolumeCapability() == nil {
		return nil, status.Error(codes.InvalidArgument, "staging path and volume capability are required")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := os.Stat(d.volumeDir(id)); err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %s: %v", id, err)
	}
	if mounted, err := isMountPoint(staging); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	} else if mounted {
		return &csipb.NodeStageVolumeResponse{}, nil
	}
	if err := bindMount(d.volumeDir(id), staging, false); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &csipb.NodeStageVolumeResponse{}, nil
}

func (d *driver) NodeUnstageVolume(_ context.Context, req *csipb.NodeUnstageVolumeRequest) (*csipb.NodeUnstageVolumeResponse, error) {
	if req.GetVolumeId() == "" || req.GetStagingTargetPath() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID and staging path are required")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := unmountIfMounted(req.GetStagingTargetPath()); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &csipb.NodeUnstageVolumeResponse{}, nil
}

// NodePublishVolume bind-mounts the staged volume (or, unstaged, the
// volume's directory; for an inline volume a new directory of its own) on
// the target path, which it creates.
func (d *driver) NodePublishVolume(_ context.Context, req *csipb.NodePublishVolumeRequest) (*csipb.NodePublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if err := checkID(id); err != nil {
		return nil, err
	}
	if target == "" || req.GetVolumeCapability() == nil {
		return nil, status.Error(codes.InvalidArgument, "target path and volume capability are required")
	}
	if req.GetVolumeCapability().GetBlock() != nil {
		return nil, status.Error(codes.InvalidArgument, "block volumes are not offered")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	src := d.volumeDir(id)
	switch {
	case req.GetVolumeContext()["csi.storage.k8s.io/ephemeral"] == "true":
		src = d.ephemeralDir(id)
		if err := os.MkdirAll(src, 0o777); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		// What the pod asked for, where the test can see it.
		if v, ok := req.GetVolumeContext()["content"]; ok {
			if err := os.WriteFile(filepath.Join(src, "content"), []byte(v), 0o644); err != nil {
				return nil, status.Error(codes.Internal, err.Error())
			}
		}
	case d.opts.stage:
		if req.GetStagingTargetPath() == "" {
			return nil, status.Error(codes.FailedPrecondition, "volume is not staged")
		}
		if mounted, err := isMountPoint(req.GetStagingTargetPath()); err != nil || !mounted {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s is not staged at %s", id, req.GetStagingTargetPath())
		}
		src = req.GetStagingTargetPath()
	default:
		if _, err := os.Stat(src); err != nil {
			return nil, status.Errorf(codes.NotFound, "volume %s: %v", id, err)
		}
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if mounted, err := isMountPoint(target); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	} else if mounted {
		return &csipb.NodePublishVolumeResponse{}, nil
	}
	if err := bindMount(src, target, req.GetReadonly()); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	// The pod's identity, when the CSIDriver asks for it (podInfoOnMount),
	// in a file beside the data the test can check.
	if name := req.GetVolumeContext()["csi.storage.k8s.io/pod.name"]; name != "" && !req.GetReadonly() {
		_ = os.WriteFile(filepath.Join(target, ".published-for"), []byte(req.GetVolumeContext()["csi.storage.k8s.io/pod.namespace"]+"/"+name), 0o644)
	}
	return &csipb.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts and removes the target; an inline volume's
// data goes with it.
func (d *driver) NodeUnpublishVolume(_ context.Context, req *csipb.NodeUnpublishVolumeRequest) (*csipb.NodeUnpublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if err := checkID(id); err != nil {
		return nil, err
	}
	if target == "" {
		return nil, status.Error(codes.InvalidArgument, "target path is required")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := unmountIfMounted(target); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if strings.HasPrefix(id, "csi-") {
		if err := os.RemoveAll(d.ephemeralDir(id)); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
	}
	return &csipb.NodeUnpublishVolumeResponse{}, nil
}

// NodeGetVolumeStats reports the volume's size (its requested capacity, or
// its file system's) and what its files take.
func (d *driver) NodeGetVolumeStats(_ context.Context, req *csipb.NodeGetVolumeStatsRequest) (*csipb.NodeGetVolumeStatsResponse, error) {
	path := req.GetVolumePath()
	if err := checkID(req.GetVolumeId()); err != nil || path == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID and path are required")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, status.Errorf(codes.NotFound, "%s: %v", path, err)
		}
		return nil, status.Error(codes.Internal, err.Error())
	}
	var used, files int64
	err := filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		files++
		if info, err := e.Info(); err == nil && !e.IsDir() {
			used += info.Size()
		}
		return nil
	})
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	total, avail := int64(st.Blocks)*st.Bsize, int64(st.Bavail)*st.Bsize
	d.mu.Lock()
	m, merr := d.readMeta(req.GetVolumeId())
	d.mu.Unlock()
	if merr == nil && m.Capacity > 0 {
		total, avail = m.Capacity, max(0, m.Capacity-used)
	}
	return &csipb.NodeGetVolumeStatsResponse{Usage: []*csipb.VolumeUsage{
		{Unit: csipb.VolumeUsage_BYTES, Total: total, Available: avail, Used: used},
		{Unit: csipb.VolumeUsage_INODES, Total: int64(st.Files), Available: int64(st.Ffree), Used: files},
	}}, nil
}

// NodeExpandVolume records the new size (a directory has nothing to grow).
func (d *driver) NodeExpandVolume(_ context.Context, req *csipb.NodeExpandVolumeRequest) (*csipb.NodeExpandVolumeResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, err := d.readMeta(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	m.Capacity = max(m.Capacity, req.GetCapacityRange().GetRequiredBytes())
	if err := d.writeMeta(req.GetVolumeId(), m); err != nil {
		return nil, err
	}
	return &csipb.NodeExpandVolumeResponse{CapacityBytes: m.Capacity}, nil
}

func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, "/") || id == "." || id == ".." {
		return status.Error(codes.InvalidArgument, "bad volume ID")
	}
	return nil
}
