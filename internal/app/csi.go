package app

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/internal/pluginmanager"
	"github.com/berth-dev/berth/internal/stats"
	"github.com/berth-dev/berth/internal/volume/csi"
)

// newCSI is the CSI volume plugin: the handler CSI drivers register with
// (plugin type csi.PluginType), and the volume manager's CSI volumes.
func newCSI(opts Options, clients *apiClients) *csi.Manager {
	return csi.New(csi.Options{Client: clients.podClient(), RootDir: opts.RootDir, NodeName: opts.NodeName})
}

// csiVolumeStats gives the stats collector the CSI drivers' volume usage.
type csiVolumeStats struct{ m *csi.Manager }

var _ stats.DriverVolumes = csiVolumeStats{}

func (s csiVolumeStats) PodVolumeStats(ctx context.Context, podUID types.UID) []stats.DriverVolume {
	in := s.m.PodVolumeStats(ctx, podUID)
	out := make([]stats.DriverVolume, 0, len(in))
	for _, v := range in {
		dv := stats.DriverVolume{
			Name: v.Name, Time: v.Time,
			CapacityBytes: v.CapacityBytes, AvailableBytes: v.AvailableBytes, UsedBytes: v.UsedBytes,
			Inodes: v.Inodes, InodesFree: v.InodesFree, InodesUsed: v.InodesUsed,
		}
		if v.Claim != nil {
			dv.PVCName, dv.PVCNamespace = v.Claim.Name, v.Claim.Namespace
		}
		out = append(out, dv)
	}
	return out
}

var _ pluginmanager.Handler = (*csi.Manager)(nil)
