package csi

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	v1 "k8s.io/api/core/v1"
	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// driver is a registered CSI driver: its socket, the highest CSI version it
// offers, and its node service's capabilities, asked once at registration
// (a driver with other capabilities registers again when it restarts).
type driver struct {
	name     string
	endpoint string
	version  *utilversion.Version
	conn     *grpc.ClientConn
	node     csipb.NodeClient
	caps     nodeCaps
}

// nodeCaps are the node service capabilities berth acts on.
type nodeCaps struct {
	stageUnstage     bool // STAGE_UNSTAGE_VOLUME
	volumeStats      bool // GET_VOLUME_STATS
	expand           bool // EXPAND_VOLUME
	volumeMountGroup bool // VOLUME_MOUNT_GROUP: the driver applies the fsGroup
	singleNodeMulti  bool // SINGLE_NODE_MULTI_WRITER: ReadWriteOncePod maps to SINGLE_NODE_SINGLE_WRITER
}

// parseNodeCaps reads NodeGetCapabilities.
func parseNodeCaps(resp *csipb.NodeGetCapabilitiesResponse) nodeCaps {
	var c nodeCaps
	for _, cap := range resp.GetCapabilities() {
		switch cap.GetRpc().GetType() {
		case csipb.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME:
			c.stageUnstage = true
		case csipb.NodeServiceCapability_RPC_GET_VOLUME_STATS:
			c.volumeStats = true
		case csipb.NodeServiceCapability_RPC_EXPAND_VOLUME:
			c.expand = true
		case csipb.NodeServiceCapability_RPC_VOLUME_MOUNT_GROUP:
			c.volumeMountGroup = true
		case csipb.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER:
			c.singleNodeMulti = true
		}
	}
	return c
}

// dialDriver connects to a driver's socket (lazily: grpc connects on the
// first call) and asks for its node capabilities.
func dialDriver(ctx context.Context, name, endpoint string, version *utilversion.Version) (*driver, error) {
	conn, err := grpc.NewClient("unix://"+endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to CSI driver %s at %s: %w", name, endpoint, err)
	}
	d := &driver{name: name, endpoint: endpoint, version: version, conn: conn, node: csipb.NewNodeClient(conn)}
	resp, err := d.node.NodeGetCapabilities(ctx, &csipb.NodeGetCapabilitiesRequest{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("NodeGetCapabilities of CSI driver %s: %w", name, err)
	}
	d.caps = parseNodeCaps(resp)
	return d, nil
}

// highestVersion is upstream's check of the versions a plugin offers: the
// highest 1.x (0.x and 2.x+ are not supported).
func highestVersion(name string, versions []string) (*utilversion.Version, error) {
	if len(versions) == 0 {
		return nil, fmt.Errorf("CSI driver %q offers no supported versions", name)
	}
	v, err := utilversion.HighestSupportedVersion(versions)
	if err != nil {
		return nil, fmt.Errorf("none of the versions of CSI driver %q (%q) is supported: %w", name, versions, err)
	}
	if v.Major() < 1 {
		return nil, fmt.Errorf("CSI driver %q offers version %s: CSI 0.x is not supported", name, v)
	}
	return v, nil
}

// accessMode maps a PersistentVolume's first access mode to CSI, as
// upstream (ReadWriteOnce when none is given).
func accessMode(modes []v1.PersistentVolumeAccessMode, caps nodeCaps) csipb.VolumeCapability_AccessMode_Mode {
	mode := v1.ReadWriteOnce
	if len(modes) > 0 {
		mode = modes[0]
	}
	switch mode {
	case v1.ReadOnlyMany:
		return csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
	case v1.ReadWriteMany:
		return csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	case v1.ReadWriteOncePod:
		if caps.singleNodeMulti {
			return csipb.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
		}
		return csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	default:
		return csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	}
}

// volumeCapability is a mounted file system's capability (berth offers no
// raw block volumes yet). fsGroup goes to the driver only when it applies
// it itself (VOLUME_MOUNT_GROUP).
func volumeCapability(fsType string, mountOptions []string, mode csipb.VolumeCapability_AccessMode_Mode, fsGroup *int64, caps nodeCaps) *csipb.VolumeCapability {
	mount := &csipb.VolumeCapability_MountVolume{FsType: fsType, MountFlags: mountOptions}
	if caps.volumeMountGroup && fsGroup != nil {
		mount.VolumeMountGroup = strconv.FormatInt(*fsGroup, 10)
	}
	return &csipb.VolumeCapability{
		AccessType: &csipb.VolumeCapability_Mount{Mount: mount},
		AccessMode: &csipb.VolumeCapability_AccessMode{Mode: mode},
	}
}

// errDriverNotFound: the driver is not registered (yet, or any more).
// Operations retry, as upstream treats it as transient.
var errDriverNotFound = errors.New("not found in the list of registered CSI drivers")
