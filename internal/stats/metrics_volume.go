package stats

import (
	"github.com/prometheus/client_golang/prometheus"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// The kubelet_volume_stats_* families of upstream's /metrics
// (pkg/kubelet/metrics/collectors/volume_stats.go): one series per claim
// the Summary names (pvcRef), from the latest sample.
var (
	volumeLabels         = []string{"namespace", "persistentvolumeclaim"}
	volumeCapacityDesc   = prometheus.NewDesc("kubelet_volume_stats_capacity_bytes", "[ALPHA] Capacity in bytes of the volume", volumeLabels, nil)
	volumeAvailableDesc  = prometheus.NewDesc("kubelet_volume_stats_available_bytes", "[ALPHA] Number of available bytes in the volume", volumeLabels, nil)
	volumeUsedDesc       = prometheus.NewDesc("kubelet_volume_stats_used_bytes", "[ALPHA] Number of used bytes in the volume", volumeLabels, nil)
	volumeInodesDesc     = prometheus.NewDesc("kubelet_volume_stats_inodes", "[ALPHA] Maximum number of inodes in the volume", volumeLabels, nil)
	volumeInodesFreeDesc = prometheus.NewDesc("kubelet_volume_stats_inodes_free", "[ALPHA] Number of free inodes in the volume", volumeLabels, nil)
	volumeInodesUsedDesc = prometheus.NewDesc("kubelet_volume_stats_inodes_used", "[ALPHA] Number of used inodes in the volume", volumeLabels, nil)
)

// VolumeStatsCollector serves the claims' volume usage on /metrics.
func (c *Collector) VolumeStatsCollector() prometheus.Collector {
	return volumeStatsCollector{c}
}

type volumeStatsCollector struct{ c *Collector }

func (volumeStatsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{volumeCapacityDesc, volumeAvailableDesc, volumeUsedDesc, volumeInodesDesc, volumeInodesFreeDesc, volumeInodesUsedDesc} {
		ch <- d
	}
}

func (v volumeStatsCollector) Collect(ch chan<- prometheus.Metric) {
	s := v.c.snap.Load()
	if s == nil {
		return
	}
	// Only driver volumes carry a claim in berth's Summary (claims on
	// local or hostPath volumes are not measured).
	seen := map[statsapi.PVCReference]bool{}
	for i := range s.Pods {
		for j := range s.Pods[i].DriverVolumes {
			dv := &s.Pods[i].DriverVolumes[j]
			ref := statsapi.PVCReference{Name: dv.PVCName, Namespace: dv.PVCNamespace}
			if ref.Name == "" || seen[ref] {
				continue
			}
			seen[ref] = true
			for _, g := range []struct {
				desc *prometheus.Desc
				v    *uint64
			}{
				{volumeCapacityDesc, dv.CapacityBytes}, {volumeAvailableDesc, dv.AvailableBytes}, {volumeUsedDesc, dv.UsedBytes},
				{volumeInodesDesc, dv.Inodes}, {volumeInodesFreeDesc, dv.InodesFree}, {volumeInodesUsedDesc, dv.InodesUsed},
			} {
				// A unit the driver did not report is left out.
				if g.v != nil {
					ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(*g.v), ref.Namespace, ref.Name)
				}
			}
		}
	}
}
