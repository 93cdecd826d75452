package status

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/berth-dev/berth/internal/cm"
)

// podResources is status.resources, upstream's
// convertToAPIPodLevelResourcesStatus (InPlacePodLevelResourcesVerticalScaling,
// on by default in v1.37): for a pod not yet running, its effective
// requests and limits (the pod-level ones, or the containers' aggregated,
// with the overhead); for a running one its pod-level resources with the
// values of its pod cgroup where they differ (cpu request from the
// shares, cpu limit from the quota, memory limit), the memory request
// aggregated when the pod sets none, and the last reported value kept
// where the cgroup has none. cgroup is what berth set on the pod's
// cgroup, nil when there is none; requests are the pod's effective
// requests (podAllocatedResources).
func podResources(pod *v1.Pod, requests v1.ResourceList, running bool, cgroup *cm.ResourceConfig, old *v1.ResourceRequirements) *v1.ResourceRequirements {
	r := pod.Spec.Resources.DeepCopy()
	if r == nil {
		r = &v1.ResourceRequirements{}
	}
	if !running {
		r.Requests = requests.DeepCopy()
		r.Limits = resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})
		return r
	}
	if r.Requests == nil {
		r.Requests = v1.ResourceList{}
	}
	if r.Limits == nil {
		r.Limits = v1.ResourceList{}
	}
	if old == nil {
		old = &v1.ResourceRequirements{}
	}
	keep := func(name v1.ResourceName, from, to v1.ResourceList) {
		if q, ok := from[name]; ok {
			to[name] = q.DeepCopy()
		}
	}
	if cgroup == nil {
		cgroup = &cm.ResourceConfig{}
	}

	if cgroup.CPUShares != nil && cm.SharesToMilliCPU(int64(*cgroup.CPUShares)) > 0 {
		actual := cm.SharesToMilliCPU(int64(*cgroup.CPUShares))
		allocated := r.Requests.Cpu().MilliValue()
		// At or below the minimum shares both ways, or shares that are
		// the allocated request's, the allocated value stays.
		if (actual > cm.MinShares || allocated > cm.MinShares) && cm.MilliCPUToShares(allocated) != *cgroup.CPUShares {
			r.Requests[v1.ResourceCPU] = *resource.NewMilliQuantity(actual, resource.DecimalSI)
		}
	} else {
		keep(v1.ResourceCPU, old.Requests, r.Requests)
	}
	if _, ok := r.Requests[v1.ResourceMemory]; !ok {
		if q, ok := requests[v1.ResourceMemory]; ok {
			r.Requests[v1.ResourceMemory] = q.DeepCopy()
		}
	}

	var cpuLimit int64
	if cgroup.CPUQuota != nil && cgroup.CPUPeriod != nil && *cgroup.CPUPeriod > 0 {
		cpuLimit = cm.QuotaToMilliCPU(*cgroup.CPUQuota, int64(*cgroup.CPUPeriod))
	}
	if cpuLimit > 0 {
		if cpuLimit > minMilliCPULimit || r.Limits.Cpu().MilliValue() > minMilliCPULimit {
			r.Limits[v1.ResourceCPU] = *resource.NewMilliQuantity(cpuLimit, resource.DecimalSI)
		}
	} else {
		keep(v1.ResourceCPU, old.Limits, r.Limits)
	}
	if cgroup.Memory != nil && *cgroup.Memory > 0 {
		r.Limits[v1.ResourceMemory] = *resource.NewQuantity(*cgroup.Memory, resource.BinarySI)
	} else {
		keep(v1.ResourceMemory, old.Limits, r.Limits)
	}
	return r
}

// podAllocatedResources is status.allocatedResources: the pod's effective
// requests (pod-level, or the containers' aggregated), with the overhead.
func podAllocatedResources(pod *v1.Pod) v1.ResourceList {
	return resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
}
