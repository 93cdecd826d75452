package eviction

import (
	"cmp"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// podStats finds a pod's stats in the Summary the round used.
type podStats func(pod *v1.Pod) (statsapi.PodStats, bool)

func statsByUID(pods []statsapi.PodStats) podStats {
	m := make(map[string]int, len(pods))
	for i := range pods {
		m[pods[i].PodRef.UID] = i
	}
	return func(pod *v1.Pod) (statsapi.PodStats, bool) {
		i, ok := m[string(pod.UID)]
		if !ok {
			return statsapi.PodStats{}, false
		}
		return pods[i], true
	}
}

// fsUse names the usage a disk ranking counts (upstream's fsStatsType).
type fsUse int

const (
	fsRoot    fsUse = 1 << iota // containers' writable layers
	fsLogs                      // containers' logs
	fsVolumes                   // local volumes (emptyDir on disk, configMap, gitRepo, hostPath)
)

// rankFor orders pods for eviction for a signal, as upstream's rank
// functions: memory by (usage above requests, priority, usage minus
// request), PIDs by (priority, processes), disk by (usage above requests,
// priority, usage minus request) of what the signal's file system holds.
// dedicatedImageFs says whether the image file system is not the node's.
func rankFor(s Signal, pods []*v1.Pod, stats podStats, dedicatedImageFs bool) {
	switch s {
	case SignalMemoryAvailable, SignalAllocatableMemoryAvailable:
		sortBy(pods, exceeds(stats, memoryOf, v1.ResourceMemory), byPriority, usageAbove(stats, memoryOf, v1.ResourceMemory))
	case SignalPIDAvailable:
		sortBy(pods, byPriority, func(a, b *v1.Pod) int {
			return withStats(stats, a, b, func(sa, sb statsapi.PodStats) int {
				return cmp.Compare(processes(sb), processes(sa))
			})
		})
	default:
		use := fsRoot | fsLogs | fsVolumes
		if dedicatedImageFs {
			use = fsLogs | fsVolumes
			if s == SignalImageFsAvailable || s == SignalImageFsInodesFree {
				use = fsRoot
			}
		}
		res, _ := signalResource(s)
		of := func(p *v1.Pod, st statsapi.PodStats) int64 { return diskUsage(p, st, use, res) }
		// Upstream compares inodes with the ephemeral-storage request too.
		sortBy(pods, exceeds(stats, of, res), byPriority, usageAbove(stats, of, v1.ResourceEphemeralStorage))
	}
}

func sortBy(pods []*v1.Pod, cmps ...func(a, b *v1.Pod) int) {
	slices.SortStableFunc(pods, func(a, b *v1.Pod) int {
		for _, c := range cmps {
			if r := c(a, b); r != 0 {
				return r
			}
		}
		return 0
	})
}

// withStats compares two pods by their stats; a pod without stats comes
// first (upstream evicts it first).
func withStats(stats podStats, a, b *v1.Pod, f func(sa, sb statsapi.PodStats) int) int {
	sa, okA := stats(a)
	sb, okB := stats(b)
	if !okA || !okB {
		return boolRank(!okA, !okB)
	}
	return f(sa, sb)
}

func byPriority(a, b *v1.Pod) int {
	return cmp.Compare(corev1helpers.PodPriority(a), corev1helpers.PodPriority(b))
}

// exceeds puts pods whose usage exceeds their request of res first.
func exceeds(stats podStats, usage func(*v1.Pod, statsapi.PodStats) int64, res v1.ResourceName) func(a, b *v1.Pod) int {
	return func(a, b *v1.Pod) int {
		return withStats(stats, a, b, func(sa, sb statsapi.PodStats) int {
			return boolRank(usage(a, sa) > request(a, res), usage(b, sb) > request(b, res))
		})
	}
}

// usageAbove puts the pod using most beyond its request of res first.
func usageAbove(stats podStats, usage func(*v1.Pod, statsapi.PodStats) int64, res v1.ResourceName) func(a, b *v1.Pod) int {
	return func(a, b *v1.Pod) int {
		return withStats(stats, a, b, func(sa, sb statsapi.PodStats) int {
			return cmp.Compare(usage(b, sb)-request(b, res), usage(a, sa)-request(a, res))
		})
	}
}

// request is the pod's effective request of res (upstream's
// GetResourceRequestQuantity): 0 for resources it does not request,
// including the internal "inodes".
func request(pod *v1.Pod, res v1.ResourceName) int64 {
	q, ok := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})[res]
	if !ok {
		return 0
	}
	return q.Value()
}

func memoryOf(_ *v1.Pod, st statsapi.PodStats) int64 {
	if st.Memory == nil || st.Memory.WorkingSetBytes == nil {
		return 0
	}
	return int64(*st.Memory.WorkingSetBytes)
}

func processes(st statsapi.PodStats) uint64 {
	if st.ProcessStats == nil || st.ProcessStats.ProcessCount == nil {
		return 0
	}
	return *st.ProcessStats.ProcessCount
}

// diskUsage is the bytes (res ephemeral-storage) or inodes the pod uses of
// what use names, as upstream's podDiskUsage.
func diskUsage(pod *v1.Pod, st statsapi.PodStats, use fsUse, res v1.ResourceName) int64 {
	var total int64
	add := func(fs *statsapi.FsStats) {
		if fs == nil {
			return
		}
		if res == resourceInodes {
			if fs.InodesUsed != nil {
				total += int64(*fs.InodesUsed)
			}
		} else if fs.UsedBytes != nil {
			total += int64(*fs.UsedBytes)
		}
	}
	for _, c := range st.Containers {
		if use&fsRoot != 0 {
			add(c.Rootfs)
		}
		if use&fsLogs != 0 {
			add(c.Logs)
		}
	}
	if use&fsVolumes != 0 {
		local := map[string]bool{}
		for _, v := range pod.Spec.Volumes {
			if isLocalVolume(&v) {
				local[v.Name] = true
			}
		}
		for i := range st.VolumeStats {
			if local[st.VolumeStats[i].Name] {
				add(&st.VolumeStats[i].FsStats)
			}
		}
	}
	return total
}

// isLocalVolume: the volumes whose usage counts against the node's disk,
// as upstream's localVolumeNames (hostPath and IsLocalEphemeralVolume).
func isLocalVolume(v *v1.Volume) bool {
	return v.HostPath != nil || v.GitRepo != nil || v.ConfigMap != nil ||
		(v.EmptyDir != nil && v.EmptyDir.Medium == v1.StorageMediumDefault)
}

// quantity formats an amount of res the way upstream's messages print it.
func quantity(n int64, res v1.ResourceName) *resource.Quantity {
	if res == resourceInodes || res == resourcePids {
		return resource.NewQuantity(n, resource.DecimalSI)
	}
	return resource.NewQuantity(n, resource.BinarySI)
}
