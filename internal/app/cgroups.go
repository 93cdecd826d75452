package app

import (
	"os"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/cm"
	"github.com/berth-dev/berth/internal/nodestatus"
	"github.com/berth-dev/berth/internal/oom"
	"github.com/berth-dev/berth/internal/runtime"
)

// cgroupLayout is how the node's cgroups are named, for the cgroup
// manager, the runtime (sandbox cgroup parents) and stats alike.
func cgroupLayout(opts Options) cm.Layout {
	return cm.NewLayout(opts.Cgroups.Root, opts.Cgroups.PerQOS, opts.CgroupDriver)
}

// newCgroupManager builds the owner of the node's cgroups, sized from the
// capacity the Node reports.
func newCgroupManager(logger klog.Logger, opts Options, activePods func() []*v1.Pod, recorder record.EventRecorder) (*cm.Manager, error) {
	capacity, errs := nodestatus.MachineCapacity(opts.RootDir, opts.MaxPods)
	for _, err := range errs {
		logger.Info("Node capacity incomplete; the node allocatable cgroup is sized without it", "err", err)
	}
	c := opts.Cgroups
	return cm.New(cm.Options{
		Layout:                 cgroupLayout(opts),
		Capacity:               cm.WithPIDs(capacity, "/proc"),
		SystemReserved:         opts.SystemReserved,
		KubeReserved:           opts.KubeReserved,
		EnforceNodeAllocatable: c.EnforceNodeAllocatable,
		KubeReservedCgroup:     c.KubeReservedCgroup,
		SystemReservedCgroup:   c.SystemReservedCgroup,
		Pod: cm.PodSettings{
			EnforceCPULimits: c.CPUCFSQuota,
			CPUPeriod:        uint64(c.CPUCFSQuotaPeriod.Microseconds()),
			PidsLimit:        c.PodPidsLimit,
			// Memory QoS is on by default from v1.37 (cgroup v2 only), at
			// the default memoryThrottlingFactor.
			MemoryHigh:             true,
			MemoryThrottlingFactor: 0.9,
			PageSize:               int64(os.Getpagesize()),
		},
		ActivePods: activePods,
		Recorder:   recorder,
		NodeName:   opts.NodeName,
	})
}

// containerOOMMonitor watches containers' memory cgroups for OOM kills;
// without it (no cgroup mount to watch) the runtime's status alone says
// OOMKilled.
func containerOOMMonitor(logger klog.Logger) (*oom.ContainerMonitor, runtime.OOMWatcher) {
	m, err := oom.NewContainerMonitor("/sys/fs/cgroup")
	if err != nil {
		logger.Info("Container OOM kills are reported as the runtime reports them", "err", err)
		return nil, nil
	}
	return m, m
}
