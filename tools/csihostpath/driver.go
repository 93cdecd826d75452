package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// driver implements the three CSI services. Volumes are directories:
// dataDir/volumes/<id> (provisioned), dataDir/ephemeral/<id> (inline);
// dataDir/volumes/<id>.json holds a provisioned volume's name and size.
type driver struct {
	csipb.UnimplementedIdentityServer
	csipb.UnimplementedControllerServer
	csipb.UnimplementedNodeServer
	opts options
	mu   sync.Mutex // serializes every call that changes volumes or mounts
}

type volumeMeta struct {
	Name     string `json:"name"`
	Capacity int64  `json:"capacity"`
}

func (d *driver) volumesDir() string         { return filepath.Join(d.opts.dataDir, "volumes") }
func (d *driver) volumeDir(id string) string { return filepath.Join(d.volumesDir(), id) }
func (d *driver) ephemeralDir(id string) string {
	return filepath.Join(d.opts.dataDir, "ephemeral", id)
}

// Identity.

func (d *driver) GetPluginInfo(context.Context, *csipb.GetPluginInfoRequest) (*csipb.GetPluginInfoResponse, error) {
	return &csipb.GetPluginInfoResponse{Name: d.opts.name, VendorVersion: "berth-test"}, nil
}

func (d *driver) GetPluginCapabilities(context.Context, *csipb.GetPluginCapabilitiesRequest) (*csipb.GetPluginCapabilitiesResponse, error) {
	svc := func(t csipb.PluginCapability_Service_Type) *csipb.PluginCapability {
		return &csipb.PluginCapability{Type: &csipb.PluginCapability_Service_{Service: &csipb.PluginCapability_Service{Type: t}}}
	}
	caps := []*csipb.PluginCapability{
		svc(csipb.PluginCapability_Service_CONTROLLER_SERVICE),
		{Type: &csipb.PluginCapability_VolumeExpansion_{VolumeExpansion: &csipb.PluginCapability_VolumeExpansion{Type: csipb.PluginCapability_VolumeExpansion_ONLINE}}},
	}
	if d.opts.topologyKey != "" {
		caps = append(caps, svc(csipb.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS))
	}
	return &csipb.GetPluginCapabilitiesResponse{Capabilities: caps}, nil
}

func (d *driver) Probe(context.Context, *csipb.ProbeRequest) (*csipb.ProbeResponse, error) {
	return &csipb.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}

// Controller.

func (d *driver) ControllerGetCapabilities(context.Context, *csipb.ControllerGetCapabilitiesRequest) (*csipb.ControllerGetCapabilitiesResponse, error) {
	rpc := func(t csipb.ControllerServiceCapability_RPC_Type) *csipb.ControllerServiceCapability {
		return &csipb.ControllerServiceCapability{Type: &csipb.ControllerServiceCapability_Rpc{Rpc: &csipb.ControllerServiceCapability_RPC{Type: t}}}
	}
	return &csipb.ControllerGetCapabilitiesResponse{Capabilities: []*csipb.ControllerServiceCapability{
		rpc(csipb.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME),
		rpc(csipb.ControllerServiceCapability_RPC_EXPAND_VOLUME),
	}}, nil
}

// CreateVolume makes the volume's directory; the ID derives from the name,
// so a repeated call finds the same volume.
func (d *driver) CreateVolume(_ context.Context, req *csipb.CreateVolumeRequest) (*csipb.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	for _, c := range req.GetVolumeCapabilities() {
		if c.GetBlock() != nil {
			return nil, status.Error(codes.InvalidArgument, "block volumes are not offered")
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id := fmt.Sprintf("vol-%x", sha256.Sum256([]byte(req.GetName())))[:20]
	size := req.GetCapacityRange().GetRequiredBytes()
	if err := os.MkdirAll(d.volumeDir(id), 0o777); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if err := d.writeMeta(id, volumeMeta{Name: req.GetName(), Capacity: size}); err != nil {
		return nil, err
	}
	v := &csipb.Volume{VolumeId: id, CapacityBytes: size}
	if d.opts.topologyKey != "" {
		v.AccessibleTopology = []*csipb.Topology{{Segments: map[string]string{d.opts.topologyKey: d.opts.nodeID}}}
	}
	return &csipb.CreateVolumeResponse{Volume: v}, nil
}

func (d *driver) DeleteVolume(_ context.Context, req *csipb.DeleteVolumeRequest) (*csipb.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" || strings.ContainsAny(id, "/.") {
		return nil, status.Error(codes.InvalidArgument, "bad volume ID")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if mounted, err := mountedFrom(d.volumeDir(id)); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	} else if mounted {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is still mounted", id)
	}
	if err := os.RemoveAll(d.volumeDir(id)); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if err := os.Remove(d.volumeDir(id) + ".json"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &csipb.DeleteVolumeResponse{}, nil
}

func (d *driver) ValidateVolumeCapabilities(_ context.Context, req *csipb.ValidateVolumeCapabilitiesRequest) (*csipb.ValidateVolumeCapabilitiesResponse, error) {
	if _, err := os.Stat(d.volumeDir(req.GetVolumeId())); err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %s: %v", req.GetVolumeId(), err)
	}
	return &csipb.ValidateVolumeCapabilitiesResponse{Confirmed: &csipb.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeCapabilities: req.GetVolumeCapabilities(),
	}}, nil
}

func (d *driver) ControllerExpandVolume(_ context.Context, req *csipb.ControllerExpandVolumeRequest) (*csipb.ControllerExpandVolumeResponse, error) {
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
	return &csipb.ControllerExpandVolumeResponse{CapacityBytes: m.Capacity, NodeExpansionRequired: true}, nil
}

func (d *driver) readMeta(id string) (volumeMeta, error) {
	var m volumeMeta
	b, err := os.ReadFile(d.volumeDir(id) + ".json")
	if errors.Is(err, fs.ErrNotExist) {
		return m, status.Errorf(codes.NotFound, "volume %s not found", id)
	}
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		return m, status.Error(codes.Internal, err.Error())
	}
	return m, nil
}

func (d *driver) writeMeta(id string, m volumeMeta) error {
	b, _ := json.Marshal(m)
	if err := os.WriteFile(d.volumeDir(id)+".json", b, 0o640); err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return nil
}

// mount helpers.

// mountPoints lists the mount points and their sources (root within
// their file system) from /proc/self/mountinfo.
func mountPoints() (map[string]bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 {
			out[unescape(fields[4])] = true
		}
	}
	return out, sc.Err()
}

func unescape(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

func isMountPoint(path string) (bool, error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	mps, err := mountPoints()
	if err != nil {
		return false, err
	}
	return mps[path], nil
}

// mountedFrom reports whether some mount shows dir: a bind mount's root
// field in mountinfo is the source path relative to its file system, so
// the test compares the device and inode of each mount point instead.
func mountedFrom(dir string) (bool, error) {
	var src syscall.Stat_t
	if err := syscall.Stat(dir, &src); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	mps, err := mountPoints()
	if err != nil {
		return false, err
	}
	for mp := range mps {
		if mp == dir {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(mp, &st) == nil && st.Dev == src.Dev && st.Ino == src.Ino {
			return true, nil
		}
	}
	return false, nil
}

func bindMount(src, dst string, readOnly bool) error {
	if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", src, dst, err)
	}
	if readOnly {
		if err := syscall.Mount("", dst, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			_ = syscall.Unmount(dst, 0)
			return fmt.Errorf("remount %s read-only: %w", dst, err)
		}
	}
	return nil
}

func unmountIfMounted(path string) error {
	mounted, err := isMountPoint(path)
	if err != nil || !mounted {
		return err
	}
	if err := syscall.Unmount(path, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	return nil
}
