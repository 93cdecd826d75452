package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/eviction"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/stats"
)

// nodeResources are the components that keep the node's resources: the
// stats collector (built here, before the API side, since the eviction
// manager reads it and node status and admission read the eviction
// manager), the eviction manager and image garbage collection.
type nodeResources struct {
	collector *stats.Collector
	evictions *eviction.Manager
	images    *image.GC
}

func newNodeResources(opts Options, rt *runtime.Manager, pods eviction.Pods, pullRecords *image.Records, recorder record.EventRecorder, evictions *prometheus.CounterVec, driverVolumes stats.DriverVolumes, clk clock.WithTicker) (*nodeResources, error) {
	kc := opts.Config
	if kc == nil {
		kc = &kubeletconfig.KubeletConfiguration{}
	}
	cfg, err := eviction.ParseConfig(kc)
	if err != nil {
		return nil, fmt.Errorf("eviction thresholds: %w", err)
	}
	layout := cgroupLayout(opts)
	collector := stats.New(stats.Options{
		Runtime:              rt,
		CgroupDriver:         opts.CgroupDriver,
		CgroupLayout:         &layout,
		RootDir:              opts.RootDir,
		PodLogsDir:           opts.PodLogsDir,
		NodeName:             opts.NodeName,
		HousekeepingInterval: opts.HousekeepingInterval,
		VolumeStatsAggPeriod: opts.VolumeStatsAggPeriod,
		DriverVolumes:        driverVolumes,
		KubeletCgroup:        opts.KubeletCgroups,
		SystemCgroup:         opts.SystemCgroups,
		Clock:                clk,
	})
	// As upstream's nodeRef: events about the node name it as its UID.
	nodeRef := &v1.ObjectReference{Kind: "Node", Name: opts.NodeName, UID: types.UID(opts.NodeName)}
	images := image.NewGC(image.GCOptions{
		Runtime: rt,
		ImageFs: imageFsUsage(collector),
		Policy: image.GCPolicy{
			HighThresholdPercent: int(deref(kc.ImageGCHighThresholdPercent, 85)),
			LowThresholdPercent:  int(deref(kc.ImageGCLowThresholdPercent, 80)),
			MinAge:               kc.ImageMinimumGCAge.Duration,
			MaxAge:               kc.ImageMaximumGCAge.Duration,
		},
		Recorder:     recorder,
		NodeRef:      nodeRef,
		Clock:        clk,
		AfterCollect: pullRecords.Prune,
	})
	manager := eviction.New(eviction.Options{
		Config:       cfg,
		Stats:        collector,
		Pods:         pods,
		ImageGC:      images,
		ContainerGC:  rt,
		Recorder:     recorder,
		NodeRef:      nodeRef,
		MemoryCgroup: memoryCgroupV1(),
		PodsCgroup:   layout.Pods(),
		OnEvicted:    func(signal string) { evictions.WithLabelValues(signal).Inc() },
		Clock:        clk,
	})
	return &nodeResources{collector: collector, evictions: manager, images: images}, nil
}

// run starts them; the eviction manager evicts through ev (the pod
// workers, built after it).
func (n *nodeResources) run(ctx context.Context, run func(func()), ev eviction.Evicter) {
	run(func() { n.collector.Run(ctx) })
	run(func() { n.evictions.Run(ctx, ev) })
	run(func() { n.images.Run(ctx) })
}

// imageFsUsage reads the image file system's size from the latest stats
// sample.
func imageFsUsage(c *stats.Collector) func(context.Context) (uint64, uint64, error) {
	return func(ctx context.Context) (uint64, uint64, error) {
		s, err := c.Summary(ctx, false)
		if err != nil {
			return 0, 0, err
		}
		if s.Node.Runtime == nil || s.Node.Runtime.ImageFs == nil {
			return 0, 0, errors.New("no image file system stats")
		}
		fs := s.Node.Runtime.ImageFs
		return deref(fs.CapacityBytes, 0), deref(fs.AvailableBytes, 0), nil
	}
}

// memoryCgroupV1 is the root of the cgroup v1 memory hierarchy, "" on a
// cgroup v2 host (no threshold notifications there).
func memoryCgroupV1() string {
	const dir = "/sys/fs/cgroup/memory"
	if _, err := os.Stat(filepath.Join(dir, "cgroup.event_control")); err != nil {
		return ""
	}
	return dir
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
