package cm

import (
	"math"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/berth-dev/berth/internal/container"
)

// ResourceConfig is what a cgroup is set to, upstream's ResourceConfig: a
// nil field is left as it is.
type ResourceConfig struct {
	CPUShares *uint64 // cgroup v1 cpu.shares; converted to cpu.weight on v2
	CPUQuota  *int64  // µs per CPUPeriod; -1 is no limit
	CPUPeriod *uint64 // µs
	Memory    *int64  // bytes
	PidsLimit *int64  // pids.max; -1 or 0 is left unset
	// HugePageLimit maps a page size in bytes to a limit in bytes; sizes
	// the host has but the map lacks are limited to 0.
	HugePageLimit map[int64]int64
	// Unified holds cgroup v2 files written as given (memory.high).
	Unified map[string]string
}

// Constants of the kernel and of upstream's helpers_linux.go.
const (
	MinShares      = 2
	MaxShares      = 262144
	SharesPerCPU   = 1024
	MilliCPUToCPU  = 1000
	QuotaPeriod    = 100000 // µs: 100 ms
	MinQuotaPeriod = 1000   // µs: the kernel's minimum quota
)

// MilliCPUToShares converts a CPU request to cpu.shares, as upstream.
func MilliCPUToShares(milliCPU int64) uint64 {
	if milliCPU == 0 {
		// The runtime takes 0 as "unset" (1024 shares); no request is the
		// kernel's minimum.
		return MinShares
	}
	shares := milliCPU * SharesPerCPU / MilliCPUToCPU
	return uint64(min(max(shares, MinShares), MaxShares))
}

// MilliCPUToQuota converts a CPU limit to a CFS quota for period (µs); 0
// means no limit.
func MilliCPUToQuota(milliCPU, period int64) int64 {
	if milliCPU == 0 {
		return 0
	}
	return max(milliCPU*period/MilliCPUToCPU, MinQuotaPeriod)
}

// CPUWeight converts cpu.shares [2, 262144] to cgroup v2's cpu.weight
// [1, 10000], upstream's getCPUWeight (and runc's).
func CPUWeight(shares uint64) uint64 {
	if shares >= MaxShares {
		return 10000
	}
	if shares < MinShares {
		shares = MinShares
	}
	return 1 + ((shares-2)*9999)/262142
}

// PodSettings are the node's settings that shape a pod's cgroup.
type PodSettings struct {
	// EnforceCPULimits is cpuCFSQuota: without it a pod's quota is -1.
	EnforceCPULimits bool
	// CPUPeriod is cpuCFSQuotaPeriod in µs (100000 by default).
	CPUPeriod uint64
	// PidsLimit is podPidsLimit; 0 or less sets none.
	PidsLimit int64
	// MemoryHigh enables pod-level memory.high on cgroup v2 for pods with
	// pod-level resources (upstream's MemoryQoS, on by default on v2),
	// at MemoryThrottlingFactor of the way from request to limit.
	MemoryHigh             bool
	MemoryThrottlingFactor float64
	PageSize               int64
}

// ForPod is the pod's cgroup configuration, upstream's
// ResourceConfigForPod (with PodLevelResources on, DRA node allocatable
// resources and memory reservation policies off) plus the pods limit its
// pod container manager adds: a Guaranteed pod gets its CPU shares,
// quota and memory limit; a Burstable one its shares, and the quota and
// memory limit only when every container (or the pod) sets that limit; a
// BestEffort one the minimum shares.
func ForPod(pod *v1.Pod, s PodSettings) ResourceConfig {
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	limits := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})
	cpuLimitsDeclared, memoryLimitsDeclared := true, true
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Resources.Limits.Cpu().IsZero() {
				cpuLimitsDeclared = false
			}
			if list[i].Resources.Limits.Memory().IsZero() {
				memoryLimitsDeclared = false
			}
		}
	}
	podLevel := resourcehelper.IsPodLevelResourcesSet(pod)
	if podLevel {
		if !pod.Spec.Resources.Limits.Cpu().IsZero() {
			cpuLimitsDeclared = true
		}
		if !pod.Spec.Resources.Limits.Memory().IsZero() {
			memoryLimitsDeclared = true
		}
	}

	var cpuRequests, cpuLimits, memoryLimits int64
	if q, ok := reqs[v1.ResourceCPU]; ok {
		cpuRequests = q.MilliValue()
	}
	if q, ok := limits[v1.ResourceCPU]; ok {
		cpuLimits = q.MilliValue()
	}
	if q, ok := limits[v1.ResourceMemory]; ok {
		memoryLimits = q.Value()
	}
	cpuShares := MilliCPUToShares(cpuRequests)
	// Upstream's CPUCFSQuotaPeriod gate is GA and locked on in v1.37.
	cpuQuota := MilliCPUToQuota(cpuLimits, int64(s.CPUPeriod))
	if !s.EnforceCPULimits {
		cpuQuota = -1
	}
	period := s.CPUPeriod

	var rc ResourceConfig
	switch container.PodQOS(pod) {
	case v1.PodQOSGuaranteed:
		rc.CPUShares, rc.CPUQuota, rc.CPUPeriod, rc.Memory = &cpuShares, &cpuQuota, &period, &memoryLimits
	case v1.PodQOSBurstable:
		rc.CPUShares = &cpuShares
		if cpuLimitsDeclared {
			rc.CPUQuota, rc.CPUPeriod = &cpuQuota, &period
		}
		if memoryLimitsDeclared {
			rc.Memory = &memoryLimits
		}
	default:
		shares := uint64(MinShares)
		rc.CPUShares = &shares
	}
	rc.HugePageLimit = HugePageLimits(reqs)
	if s.PidsLimit > 0 {
		pids := s.PidsLimit
		rc.PidsLimit = &pids
	}
	if s.MemoryHigh && podLevel && memoryLimitsDeclared {
		var memoryRequest int64
		if q, ok := reqs[v1.ResourceMemory]; ok {
			memoryRequest = q.Value()
		}
		if high := memoryHigh(memoryRequest, memoryLimits, s.MemoryThrottlingFactor, s.PageSize); high != "" {
			rc.Unified = map[string]string{"memory.high": high}
		}
	}
	return rc
}

// memoryHigh is upstream's memoryHighForPod: request plus the throttling
// factor's share of the way to the limit, rounded down to a page; none
// when request equals limit or there is no limit.
func memoryHigh(request, limit int64, factor float64, pageSize int64) string {
	if (request == limit && request != 0) || limit == 0 || pageSize <= 0 {
		return ""
	}
	high := int64(math.Floor(float64(request)+(float64(limit)-float64(request))*factor)/float64(pageSize)) * pageSize
	if high > 0 && high > request {
		return strconv.FormatInt(high, 10)
	}
	return ""
}

// HugePageLimits sums the huge page resources of a list by page size, in
// bytes, as upstream's HugePageLimits.
func HugePageLimits(rl v1.ResourceList) map[int64]int64 {
	limits := map[int64]int64{}
	for name, q := range rl {
		size, ok := hugePageSize(name)
		if !ok {
			continue
		}
		limits[size] += q.Value()
	}
	return limits
}

// hugePageSize parses the page size out of "hugepages-2Mi".
func hugePageSize(name v1.ResourceName) (int64, bool) {
	s, ok := strings.CutPrefix(string(name), v1.ResourceHugePagesPrefix)
	if !ok {
		return 0, false
	}
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Value() <= 0 {
		return 0, false
	}
	return q.Value(), true
}

// ResourcePIDs is upstream's pidlimit.PIDs, the process IDs a reservation
// (kubeReserved, systemReserved) may hold back.
const ResourcePIDs v1.ResourceName = "pid"

// ForNode is the configuration of a node-level cgroup (kubepods, or a
// kube- or system-reserved cgroup) from a resource list, upstream's
// getCgroupConfigInternal: memory, CPU shares, pids and huge pages; with
// compressibleOnly just the CPU shares.
func ForNode(rl v1.ResourceList, compressibleOnly bool) ResourceConfig {
	var rc ResourceConfig
	if q, ok := rl[v1.ResourceCPU]; ok {
		shares := MilliCPUToShares(q.MilliValue())
		rc.CPUShares = &shares
	}
	if compressibleOnly {
		return rc
	}
	if q, ok := rl[v1.ResourceMemory]; ok {
		m := q.Value()
		rc.Memory = &m
	}
	if q, ok := rl[ResourcePIDs]; ok {
		p := q.Value()
		rc.PidsLimit = &p
	}
	rc.HugePageLimit = HugePageLimits(rl)
	return rc
}

// NodeAllocatable is capacity minus systemReserved and kubeReserved,
// never below zero: upstream's GetNodeAllocatableAbsolute, what the
// kubepods cgroup is limited to when "pods" is enforced. Hard eviction
// thresholds are not subtracted (they are for the scheduler's
// allocatable, not for the cgroup), as upstream.
func NodeAllocatable(capacity, systemReserved, kubeReserved v1.ResourceList) v1.ResourceList {
	out := v1.ResourceList{}
	for name, c := range capacity {
		v := c.DeepCopy()
		if q, ok := systemReserved[name]; ok {
			v.Sub(q)
		}
		if q, ok := kubeReserved[name]; ok {
			v.Sub(q)
		}
		if v.Sign() < 0 {
			v.Set(0)
		}
		out[name] = v
	}
	return out
}

// QOSConfig is what the QoS cgroups hold.
type QOSConfig struct {
	Burstable, BestEffort ResourceConfig
}

// ForQOS computes the QoS cgroups' settings from the active pods, as
// upstream's qosContainerManager.UpdateCgroups with memory QoS and
// qosReserved off: BestEffort has the minimum CPU shares, Burstable the
// shares of its pods' CPU requests together. Huge pages stay unbounded
// (hugePageSizes are the host's page sizes).
func ForQOS(pods []*v1.Pod, hugePageSizes []int64) QOSConfig {
	var burstableMilliCPU int64
	for _, pod := range pods {
		if container.PodQOS(pod) != v1.PodQOSBurstable {
			continue
		}
		reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
		if q, ok := reqs[v1.ResourceCPU]; ok {
			burstableMilliCPU += q.MilliValue()
		}
	}
	burstable, bestEffort := MilliCPUToShares(burstableMilliCPU), uint64(MinShares)
	return QOSConfig{
		Burstable:  ResourceConfig{CPUShares: &burstable, HugePageLimit: unboundedHugePages(hugePageSizes)},
		BestEffort: ResourceConfig{CPUShares: &bestEffort, HugePageLimit: unboundedHugePages(hugePageSizes)},
	}
}

// unboundedHugePages is upstream's setHugePagesUnbounded: every page size
// at 1<<62 bytes.
func unboundedHugePages(sizes []int64) map[int64]int64 {
	m := make(map[int64]int64, len(sizes))
	for _, s := range sizes {
		m[s] = 1 << 62
	}
	return m
}
