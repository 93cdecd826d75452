package stats

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// DriverVolumes measures the volumes a storage driver serves, which the
// node cannot walk (CSI volumes: NodeGetVolumeStats). internal/app adapts
// the CSI manager to it.
type DriverVolumes interface {
	PodVolumeStats(ctx context.Context, podUID types.UID) []DriverVolume
}

// DriverVolume is one volume's usage as its driver reports it.
type DriverVolume struct {
	Name string
	// PVCName and PVCNamespace name the claim the volume comes from; empty
	// for an inline volume (counted in the pod's ephemeral storage).
	PVCName, PVCNamespace string
	Time                  time.Time
	// Nil where the driver did not report the unit.
	CapacityBytes, AvailableBytes, UsedBytes *uint64
	Inodes, InodesFree, InodesUsed           *uint64
}

// driverVolumeTimeout bounds the drivers' answers for one pod, so that a
// hung driver delays a housekeeping round by at most this much.
const driverVolumeTimeout = 5 * time.Second

// driverVolumeSnap is a pod's driver volumes as last asked.
type driverVolumeSnap struct {
	time time.Time
	vols []DriverVolume
}

// sampleDriverVolumes asks the drivers at most once per
// VolumeStatsAggPeriod per pod, as upstream's volume stat calculator. An
// empty answer is not kept: a pod without driver volumes costs the
// provider a lookup per round, and one whose volumes are published after
// it was first sampled (berth restarted before its driver registered)
// is measured at the next round rather than a period later.
func (c *Collector) sampleDriverVolumes(ctx context.Context, r *podRound, uid types.UID) []DriverVolume {
	if c.opts.DriverVolumes == nil {
		return nil
	}
	now := c.clock.Now()
	snap, seen := c.driverVols[uid]
	if !seen || now.Sub(snap.time) >= c.opts.VolumeStatsAggPeriod {
		cctx, cancel := context.WithTimeout(ctx, driverVolumeTimeout)
		snap = driverVolumeSnap{time: now, vols: c.opts.DriverVolumes.PodVolumeStats(cctx, uid)}
		cancel()
	}
	if len(snap.vols) > 0 {
		r.driverVols[uid] = snap
	}
	return snap.vols
}

// driverVolumeStats is a driver volume in the Summary.
func driverVolumeStats(v *DriverVolume) statsapi.VolumeStats {
	vs := statsapi.VolumeStats{
		Name: v.Name,
		FsStats: statsapi.FsStats{
			Time:           metav1.NewTime(v.Time),
			CapacityBytes:  v.CapacityBytes,
			AvailableBytes: v.AvailableBytes,
			UsedBytes:      v.UsedBytes,
			Inodes:         v.Inodes,
			InodesFree:     v.InodesFree,
			InodesUsed:     v.InodesUsed,
		},
	}
	if v.PVCName != "" {
		vs.PVCRef = &statsapi.PVCReference{Name: v.PVCName, Namespace: v.PVCNamespace}
	}
	return vs
}
