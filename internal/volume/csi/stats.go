package csi

import (
	"context"
	"slices"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// VolumeStats is the usage of one CSI volume of a pod as its driver
// measures it (NodeGetVolumeStats).
type VolumeStats struct {
	// Name is the pod's volume name; Claim the PVC it comes from, if any.
	Name  string
	Claim *types.NamespacedName
	Time  time.Time
	// Nil where the driver did not report the unit.
	CapacityBytes, AvailableBytes, UsedBytes *uint64
	Inodes, InodesFree, InodesUsed           *uint64
}

// PodVolumeStats asks the drivers of a pod's published volumes that offer
// GET_VOLUME_STATS for their usage. Volumes of other drivers, or whose
// driver fails, are left out (upstream leaves them out of the Summary too).
func (m *Manager) PodVolumeStats(ctx context.Context, podUID types.UID) []VolumeStats {
	type item struct {
		name string
		v    publishedVolume
		d    *driver
	}
	var items []item
	m.mu.Lock()
	for name, v := range m.published[podUID] {
		if d := m.drivers[v.driver]; d != nil && d.caps.volumeStats {
			items = append(items, item{name, v, d})
		}
	}
	m.mu.Unlock()
	slices.SortFunc(items, func(a, b item) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	var out []VolumeStats
	for _, it := range items {
		cctx, cancel := context.WithTimeout(ctx, csiTimeout)
		resp, err := it.d.node.NodeGetVolumeStats(cctx, &csipb.NodeGetVolumeStatsRequest{
			VolumeId: it.v.handle, VolumePath: it.v.target, StagingTargetPath: it.v.staging,
		})
		cancel()
		if err != nil {
			klog.FromContext(ctx).V(2).Info("NodeGetVolumeStats failed", "podUID", podUID, "volume", it.name, "driver", it.v.driver, "err", err)
			continue
		}
		out = append(out, volumeStatsOf(it.name, it.v.claim, resp, time.Now()))
	}
	return out
}

// volumeStatsOf reads a NodeGetVolumeStats response.
func volumeStatsOf(name string, claim *types.NamespacedName, resp *csipb.NodeGetVolumeStatsResponse, now time.Time) VolumeStats {
	vs := VolumeStats{Name: name, Claim: claim, Time: now}
	u := func(n int64) *uint64 {
		if n < 0 {
			n = 0
		}
		x := uint64(n)
		return &x
	}
	for _, usage := range resp.GetUsage() {
		switch usage.GetUnit() {
		case csipb.VolumeUsage_BYTES:
			vs.CapacityBytes, vs.AvailableBytes, vs.UsedBytes = u(usage.GetTotal()), u(usage.GetAvailable()), u(usage.GetUsed())
		case csipb.VolumeUsage_INODES:
			vs.Inodes, vs.InodesFree, vs.InodesUsed = u(usage.GetTotal()), u(usage.GetAvailable()), u(usage.GetUsed())
		}
	}
	return vs
}
