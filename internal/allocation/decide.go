package allocation

import (
	"slices"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/berth-dev/berth/internal/container"
)

// FromAllocation returns pod with its containers' resources (and the
// pod-level ones) set to those of info, and whether any differed. pod is
// copied only when something differs.
func FromAllocation(pod *v1.Pod, info PodResourceInfo) (*v1.Pod, bool) {
	var out *v1.Pod
	set := func(init bool, i int, r v1.ResourceRequirements) {
		if out == nil {
			out = pod.DeepCopy()
		}
		if init {
			out.Spec.InitContainers[i].Resources = *r.DeepCopy()
		} else {
			out.Spec.Containers[i].Resources = *r.DeepCopy()
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if r, ok := info.ContainerResources[c.Name]; ok && IsResizable(c, true) && !apiequality.Semantic.DeepEqual(c.Resources, r) {
			set(true, i, r)
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if r, ok := info.ContainerResources[c.Name]; ok && !apiequality.Semantic.DeepEqual(c.Resources, r) {
			set(false, i, r)
		}
	}
	if info.PodLevelResources != nil && !apiequality.Semantic.DeepEqual(pod.Spec.Resources, info.PodLevelResources) {
		if out == nil {
			out = pod.DeepCopy()
		}
		out.Spec.Resources = info.PodLevelResources.DeepCopy()
	}
	if out == nil {
		return pod, false
	}
	return out, true
}

// IncreasesRequests reports whether the desired pod requests more cpu or
// memory than the allocated one: such a resize may have to wait for room,
// one that does not is always allocated (retried first).
func IncreasesRequests(desired, allocated *v1.Pod) bool {
	oldReq := resourcehelper.PodRequests(allocated, resourcehelper.PodResourcesOptions{})
	newReq := resourcehelper.PodRequests(desired, resourcehelper.PodResourcesOptions{})
	return newReq.Memory().Cmp(*oldReq.Memory()) > 0 || newReq.Cpu().Cmp(*oldReq.Cpu()) > 0
}

// SortPending orders deferred resizes as upstream retries them: those
// that do not increase requests first, then by priority (higher first),
// then Guaranteed before other classes, then the longest deferred first
// (deferredSince; a pod without one goes last). increasing tells a pod's
// resize apart.
func SortPending(pods []*v1.Pod, increasing func(*v1.Pod) bool, deferredSince func(*v1.Pod) (int64, bool)) {
	prio := func(p *v1.Pod) int32 {
		if p.Spec.Priority != nil {
			return *p.Spec.Priority
		}
		return 0
	}
	slices.SortStableFunc(pods, func(a, b *v1.Pod) int {
		ai, bi := increasing(a), increasing(b)
		if ai != bi {
			if !ai {
				return -1
			}
			return 1
		}
		if pa, pb := prio(a), prio(b); pa != pb {
			if pa > pb {
				return -1
			}
			return 1
		}
		ga, gb := container.PodQOS(a) == v1.PodQOSGuaranteed, container.PodQOS(b) == v1.PodQOSGuaranteed
		if ga != gb {
			if ga {
				return -1
			}
			return 1
		}
		ta, oka := deferredSince(a)
		tb, okb := deferredSince(b)
		switch {
		case oka && !okb:
			return -1
		case !oka && okb:
			return 1
		case ta < tb:
			return -1
		case ta > tb:
			return 1
		}
		return 0
	})
}
