package csi

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

// fakeDriver is an in-process CSI node service on a unix socket that
// records its calls and makes the directories a real driver would.
type fakeDriver struct {
	csipb.UnimplementedNodeServer
	caps     []csipb.NodeServiceCapability_RPC_Type
	nodeID   string
	maxVols  int64
	topology map[string]string

	mu    sync.Mutex
	calls []string
	last  map[string]any // last request by method
}

func (f *fakeDriver) record(method string, req any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method)
	if f.last == nil {
		f.last = map[string]any{}
	}
	f.last[method] = req
}

func (f *fakeDriver) callCount(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == method {
			n++
		}
	}
	return n
}

func (f *fakeDriver) lastReq(method string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last[method]
}

func (f *fakeDriver) NodeGetCapabilities(_ context.Context, req *csipb.NodeGetCapabilitiesRequest) (*csipb.NodeGetCapabilitiesResponse, error) {
	var caps []*csipb.NodeServiceCapability
	for _, c := range f.caps {
		caps = append(caps, &csipb.NodeServiceCapability{Type: &csipb.NodeServiceCapability_Rpc{Rpc: &csipb.NodeServiceCapability_RPC{Type: c}}})
	}
	return &csipb.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

func (f *fakeDriver) NodeGetInfo(_ context.Context, req *csipb.NodeGetInfoRequest) (*csipb.NodeGetInfoResponse, error) {
	f.record("NodeGetInfo", req)
	resp := &csipb.NodeGetInfoResponse{NodeId: f.nodeID, MaxVolumesPerNode: f.maxVols}
	if f.topology != nil {
		resp.AccessibleTopology = &csipb.Topology{Segments: f.topology}
	}
	return resp, nil
}

func (f *fakeDriver) NodeStageVolume(_ context.Context, req *csipb.NodeStageVolumeRequest) (*csipb.NodeStageVolumeResponse, error) {
	f.record("NodeStageVolume", req)
	return &csipb.NodeStageVolumeResponse{}, nil
}

func (f *fakeDriver) NodeUnstageVolume(_ context.Context, req *csipb.NodeUnstageVolumeRequest) (*csipb.NodeUnstageVolumeResponse, error) {
	f.record("NodeUnstageVolume", req)
	return &csipb.NodeUnstageVolumeResponse{}, nil
}

func (f *fakeDriver) NodePublishVolume(_ context.Context, req *csipb.NodePublishVolumeRequest) (*csipb.NodePublishVolumeResponse, error) {
	f.record("NodePublishVolume", req)
	return &csipb.NodePublishVolumeResponse{}, os.MkdirAll(req.TargetPath, 0o750)
}

func (f *fakeDriver) NodeUnpublishVolume(_ context.Context, req *csipb.NodeUnpublishVolumeRequest) (*csipb.NodeUnpublishVolumeResponse, error) {
	f.record("NodeUnpublishVolume", req)
	return &csipb.NodeUnpublishVolumeResponse{}, os.RemoveAll(req.TargetPath)
}

func (f *fakeDriver) NodeExpandVolume(_ context.Context, req *csipb.NodeExpandVolumeRequest) (*csipb.NodeExpandVolumeResponse, error) {
	f.record("NodeExpandVolume", req)
	return &csipb.NodeExpandVolumeResponse{CapacityBytes: req.CapacityRange.RequiredBytes}, nil
}

func (f *fakeDriver) NodeGetVolumeStats(_ context.Context, req *csipb.NodeGetVolumeStatsRequest) (*csipb.NodeGetVolumeStatsResponse, error) {
	f.record("NodeGetVolumeStats", req)
	return &csipb.NodeGetVolumeStatsResponse{Usage: []*csipb.VolumeUsage{
		{Unit: csipb.VolumeUsage_BYTES, Total: 100, Available: 60, Used: 40},
		{Unit: csipb.VolumeUsage_INODES, Total: 10, Available: 7, Used: 3},
	}}, nil
}

// serve starts the fake on a socket in a temporary directory and returns
// its path.
func (f *fakeDriver) serve(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "csi-fake-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "csi.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	csipb.RegisterNodeServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return sock
}
