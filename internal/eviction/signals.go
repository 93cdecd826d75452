package eviction

import (
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// observation is a signal's value in one Summary: what is available of
// what capacity, and when it was measured.
type observation struct {
	available, capacity int64
	time                time.Time
}

type observations map[Signal]observation

// observe derives every signal from a Summary as upstream's
// makeSignalObservations: memory.available is the node's available bytes
// (capacity − working set of the root cgroup, the Summary's own numbers),
// allocatableMemory.available the same for the "pods" system container,
// the file system signals from node.fs and node.runtime.imageFs, and
// pid.available from node.rlimit.
func observe(s *statsapi.Summary) observations {
	out := observations{}
	if m := s.Node.Memory; m != nil && m.AvailableBytes != nil && m.WorkingSetBytes != nil {
		out[SignalMemoryAvailable] = observation{int64(*m.AvailableBytes), int64(*m.AvailableBytes + *m.WorkingSetBytes), m.Time.Time}
	}
	for _, sc := range s.Node.SystemContainers {
		if sc.Name != statsapi.SystemContainerPods {
			continue
		}
		if m := sc.Memory; m != nil && m.AvailableBytes != nil && m.WorkingSetBytes != nil {
			out[SignalAllocatableMemoryAvailable] = observation{int64(*m.AvailableBytes), int64(*m.AvailableBytes + *m.WorkingSetBytes), m.Time.Time}
		}
	}
	fsSignals := func(fs *statsapi.FsStats, bytes, inodes Signal) {
		if fs == nil {
			return
		}
		if fs.AvailableBytes != nil && fs.CapacityBytes != nil {
			out[bytes] = observation{int64(*fs.AvailableBytes), int64(*fs.CapacityBytes), fs.Time.Time}
		}
		if fs.InodesFree != nil && fs.Inodes != nil {
			out[inodes] = observation{int64(*fs.InodesFree), int64(*fs.Inodes), fs.Time.Time}
		}
	}
	fsSignals(s.Node.Fs, SignalNodeFsAvailable, SignalNodeFsInodesFree)
	if rt := s.Node.Runtime; rt != nil {
		fsSignals(rt.ImageFs, SignalImageFsAvailable, SignalImageFsInodesFree)
	}
	if r := s.Node.Rlimit; r != nil && r.MaxPID != nil && r.NumOfRunningProcesses != nil {
		out[SignalPIDAvailable] = observation{*r.MaxPID - *r.NumOfRunningProcesses, *r.MaxPID, r.Time.Time}
	}
	return out
}
