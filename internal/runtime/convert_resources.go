package runtime

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/cm"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/source"
)

// OOM score constants of the upstream kubelet (qos/policy.go).
const (
	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000
)

// linuxResources computes the cgroup settings for cpu request and limits
// (upstream calculateLinuxResources): the CFS quota and period only with
// cpuCFSQuota, the period being cpuCFSQuotaPeriod. A nil cpuRequest falls
// back to the limit.
func linuxResources(cpuRequest, cpuLimit, memoryLimit *resource.Quantity, node *nodeConfig) *runtimeapi.LinuxContainerResources {
	if cpuRequest == nil {
		cpuRequest = cpuLimit
	}
	r := &runtimeapi.LinuxContainerResources{
		CpuShares:          int64(cm.MilliCPUToShares(cpuRequest.MilliValue())),
		MemoryLimitInBytes: memoryLimit.Value(),
	}
	if !node.disableCPUQuota {
		r.CpuPeriod = node.cpuPeriod()
		r.CpuQuota = cm.MilliCPUToQuota(cpuLimit.MilliValue(), r.CpuPeriod)
	}
	return r
}

// containerResources is a container's cgroup settings, including its
// oom_score_adj. Huge pages, swap and memory QoS are not configured.
func containerResources(pod *v1.Pod, c *v1.Container, node *nodeConfig) *runtimeapi.LinuxContainerResources {
	var cpuRequest *resource.Quantity
	if _, ok := c.Resources.Requests[v1.ResourceCPU]; ok {
		cpuRequest = c.Resources.Requests.Cpu()
	}
	r := linuxResources(cpuRequest, containerLimit(pod, c, v1.ResourceCPU), containerLimit(pod, c, v1.ResourceMemory), node)
	r.OomScoreAdj = max(oomScoreAdj(pod, c, node.memoryCapacity), node.minOOMScoreAdj)
	if node.cgroupV2 {
		r.Unified = map[string]string{
			// An OOM kill takes the whole container, not one process of it
			// (upstream's default on cgroup v2, singleProcessOOMKill false).
			"memory.oom.group": "1",
			// No memory QoS: clear any throttle a resize left behind.
			"memory.high": "max",
		}
	}
	return r
}

// containerLimit is the container's limit of cpu or memory, or, where it
// sets none in a pod with pod-level resources, the pod's (upstream's
// getCPULimit and getMemoryLimit): the container's own cgroup then carries
// the pod's limit too, for what reads a container's limits from there.
func containerLimit(pod *v1.Pod, c *v1.Container, name v1.ResourceName) *resource.Quantity {
	q := c.Resources.Limits.Name(name, resource.DecimalSI)
	if q.IsZero() && resourcehelper.IsPodLevelResourcesSet(pod) {
		return pod.Spec.Resources.Limits.Name(name, resource.DecimalSI)
	}
	return q
}

// oomScoreAdj is upstream's qos.GetContainerOOMScoreAdjust: Guaranteed pods
// are killed last, BestEffort first, Burstable in between by the share of
// node memory they request.
func oomScoreAdj(pod *v1.Pod, c *v1.Container, memoryCapacity int64) int64 {
	if isNodeCritical(pod) {
		return guaranteedOOMScoreAdj
	}
	switch container.PodQOS(pod) {
	case v1.PodQOSGuaranteed:
		return guaranteedOOMScoreAdj
	case v1.PodQOSBestEffort:
		return besteffortOOMScoreAdj
	}
	if memoryCapacity <= 0 {
		return besteffortOOMScoreAdj - 1
	}
	// A pod-level memory request beyond what the containers request is
	// shared out equally among them (upstream's PodLevelResources rule).
	extra := podMemoryRequestPerContainer(pod)
	adj := 1000 - 1000*(c.Resources.Requests.Memory().Value()+extra)/memoryCapacity
	if container.IsSidecar(c) {
		// A sidecar must not be killed before the containers it serves.
		// (An app container with restartPolicy Always, under container
		// restart rules, changes nothing here: its own request is never
		// below the smallest.)
		if minReq := minRegularMemoryRequest(pod); minReq >= 0 {
			adj = min(adj, 1000-1000*(minReq+extra)/memoryCapacity)
		}
	}
	if adj < 1000+guaranteedOOMScoreAdj {
		return 1000 + guaranteedOOMScoreAdj
	}
	if adj == besteffortOOMScoreAdj {
		return adj - 1
	}
	return adj
}

// isNodeCritical mirrors upstream types.IsNodeCriticalPod: a critical pod
// (static, mirror, or of system priority) in the system-node-critical class.
func isNodeCritical(pod *v1.Pod) bool {
	return pod.Spec.PriorityClassName == "system-node-critical" && source.IsCritical(pod)
}

// podMemoryRequestPerContainer is the pod-level memory request not covered
// by the containers' own, divided by the number of containers and init
// containers (upstream's remainingPodMemReqPerContainer); 0 without a
// pod-level memory request.
func podMemoryRequestPerContainer(pod *v1.Pod) int64 {
	if pod.Spec.Resources == nil || pod.Spec.Resources.Requests.Memory().IsZero() {
		return 0
	}
	n := int64(len(pod.Spec.Containers) + len(pod.Spec.InitContainers))
	if n == 0 {
		return 0
	}
	containers := resourcehelper.AggregateContainerRequests(pod, resourcehelper.PodResourcesOptions{})
	return max(pod.Spec.Resources.Requests.Memory().Value()-containers.Memory().Value(), 0) / n
}

// minRegularMemoryRequest is the smallest memory request among the regular
// containers, or -1 when there are none.
func minRegularMemoryRequest(pod *v1.Pod) int64 {
	m := int64(-1)
	for _, c := range pod.Spec.Containers {
		v := c.Resources.Requests.Memory().Value()
		if m < 0 || v < m {
			m = v
		}
	}
	return m
}

// sandboxResources are the pod-level cgroup settings the runtime may apply
// to the sandbox, as upstream's calculateSandboxResources: the pod's
// effective requests and limits without overhead (component-helpers
// PodRequests and PodLimits: regular containers and sidecars together, or
// the largest init container alongside the sidecars started before it,
// whichever is more; pod-level resources where set). A limit is the sum of
// the limits that are set, as upstream.
func sandboxResources(pod *v1.Pod, node *nodeConfig) *runtimeapi.LinuxContainerResources {
	opts := resourcehelper.PodResourcesOptions{ExcludeOverhead: true}
	req := resourcehelper.PodRequests(pod, opts)
	lim := resourcehelper.PodLimits(pod, opts)
	var cpuRequest *resource.Quantity
	if _, ok := req[v1.ResourceCPU]; ok {
		cpuRequest = req.Cpu()
	}
	return linuxResources(cpuRequest, lim.Cpu(), lim.Memory(), node)
}

// overheadResources turns the pod's RuntimeClass overhead into cgroup
// settings; overhead has no separate request and limit.
func overheadResources(pod *v1.Pod, node *nodeConfig) *runtimeapi.LinuxContainerResources {
	if pod.Spec.Overhead == nil {
		return &runtimeapi.LinuxContainerResources{}
	}
	cpu, mem := pod.Spec.Overhead.Cpu(), pod.Spec.Overhead.Memory()
	return linuxResources(cpu, cpu, mem, node)
}
