package volume

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// podMemoryLimit is the memory limit of the pod's cgroup, as upstream
// computes it for sizing memory-backed volumes: the pod-level limit if set;
// otherwise, when every container has a memory limit, the larger of the
// long-running containers' sum (regular and sidecars) and each init
// container's own limit plus the sidecars started before it; plus the
// pod overhead. ok is false when the pod has no memory limit.
func podMemoryLimit(pod *v1.Pod) (int64, bool) {
	overhead := pod.Spec.Overhead.Memory().Value()
	if r := pod.Spec.Resources; r != nil {
		if q, ok := r.Limits[v1.ResourceMemory]; ok && !q.IsZero() {
			return q.Value() + overhead, true
		}
	}
	limit := func(c *v1.Container) (int64, bool) {
		q, ok := c.Resources.Limits[v1.ResourceMemory]
		return q.Value(), ok && !q.IsZero()
	}
	var sum, initMax, sidecars int64
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		l, ok := limit(c)
		if !ok {
			return 0, false
		}
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			sidecars += l
			initMax = max(initMax, sidecars)
			continue
		}
		initMax = max(initMax, sidecars+l)
	}
	for i := range pod.Spec.Containers {
		l, ok := limit(&pod.Spec.Containers[i])
		if !ok {
			return 0, false
		}
		sum += l
	}
	return max(sum+sidecars, initMax) + overhead, true
}

// tmpfsSize is the size of a memory-backed volume as upstream's
// calculateEmptyDirMemorySize: node allocatable memory, lowered to the
// pod's memory limit, lowered to the volume's sizeLimit; 0 when none is
// known (the kernel's default).
func (m *Manager) tmpfsSize(pod *v1.Pod, sizeLimit *resource.Quantity) int64 {
	var size int64
	if m.nodeAllocatable != nil {
		if q, ok := m.nodeAllocatable()[v1.ResourceMemory]; ok {
			size = q.Value()
		}
	}
	lower := func(v int64) {
		if v > 0 && (size == 0 || v <= size) {
			size = v
		}
	}
	if l, ok := podMemoryLimit(pod); ok {
		lower(l)
	}
	if sizeLimit != nil {
		lower(sizeLimit.Value())
	}
	return size
}
