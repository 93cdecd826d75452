package plan

import (
	"fmt"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// ReasonResize is the kill reason of a container whose resizePolicy asks
// for a restart.
const ReasonResize = "Resize"

// ValuesOf reduces resource requirements to the values a resize compares.
func ValuesOf(r *v1.ResourceRequirements) ResourceValues {
	return ResourceValues{
		CPURequest:    r.Requests.Cpu().MilliValue(),
		CPULimit:      r.Limits.Cpu().MilliValue(),
		MemoryRequest: r.Requests.Memory().Value(),
		MemoryLimit:   r.Limits.Memory().Value(),
	}
}

// EffectiveValues are a container's values with, where it declares no
// limit, the pod-level limit (upstream's containerResourcesFromRequirements
// with pod-level resources): the limit its cgroup gets.
func EffectiveValues(podLevel, c *v1.ResourceRequirements) ResourceValues {
	v := ValuesOf(c)
	if podLevel != nil {
		if v.CPULimit == 0 {
			v.CPULimit = podLevel.Limits.Cpu().MilliValue()
		}
		if v.MemoryLimit == 0 {
			v.MemoryLimit = podLevel.Limits.Memory().Value()
		}
	}
	return v
}

// PodLevelDiffers reports whether the pod-level cpu or memory values
// allocated (spec.resources of the allocated pod) differ from those
// applied to the pod's cgroup; a pod without pod-level resources never
// differs. Nothing recorded counts as nothing applied, as upstream: the
// resize then writes what the cgroup must have, which it may have
// already.
func PodLevelDiffers(allocated, actuated *v1.ResourceRequirements) bool {
	if allocated == nil {
		return false
	}
	if actuated == nil {
		actuated = &v1.ResourceRequirements{}
	}
	return ValuesOf(allocated) != ValuesOf(actuated)
}

// resizeAction decides how a running container, spec c (its allocated
// resources), reaches its resources, as upstream's computePodResizeAction:
// nothing when the applied values (cs.Actuated) equal them, each side
// with its pod-level limits where the container declares none; a restart when
// a changed resource's resizePolicy is RestartContainer (it returns false:
// the caller kills and starts it); else an in-place update added to a. A
// container whose applied values were never recorded is left as it is:
// berth created it before recording them, with the spec's resources at
// the time (its spec hash covered them).
func resizeAction(pod *v1.Pod, c *v1.Container, st *container.PodStatus, cs *container.ContainerStatus, a *PodActions) (keep bool) {
	if cs.State != container.StateRunning || cs.Actuated == nil {
		return true
	}
	desired, current := EffectiveValues(pod.Spec.Resources, &c.Resources), EffectiveValues(st.ActuatedPodLevel, cs.Actuated)
	if desired == current {
		return true
	}
	restartFor := func(name v1.ResourceName) bool {
		for _, p := range c.ResizePolicy {
			if p.ResourceName == name {
				return p.RestartPolicy == v1.RestartContainer
			}
		}
		return false
	}
	memChanged := desired.MemoryLimit != current.MemoryLimit || desired.MemoryRequest != current.MemoryRequest
	cpuChanged := desired.CPULimit != current.CPULimit || desired.CPURequest != current.CPURequest
	if (memChanged && restartFor(v1.ResourceMemory)) || (cpuChanged && restartFor(v1.ResourceCPU)) {
		a.kill(cs, ReasonResize, fmt.Sprintf("Container %s resize requires restart", c.Name))
		if a.Resize == nil {
			a.Resize = &Resize{}
		}
		a.Resize.Pod = true
		return false
	}
	if a.Resize == nil {
		a.Resize = &Resize{}
	}
	rc := ResizeContainer{ID: cs.ID, Name: c.Name, Current: current, Desired: desired}
	// Ordered by the limit when it changes, else by the request.
	if memChanged {
		d, cur := desired.MemoryLimit, current.MemoryLimit
		if d == cur {
			d, cur = desired.MemoryRequest, current.MemoryRequest
		}
		a.Resize.Memory = insertOrdered(a.Resize.Memory, rc, d < cur)
	}
	if cpuChanged {
		d, cur := desired.CPULimit, current.CPULimit
		if d == cur {
			d, cur = desired.CPURequest, current.CPURequest
		}
		a.Resize.CPU = insertOrdered(a.Resize.CPU, rc, d < cur)
	}
	return true
}

// insertOrdered puts a decrease before every other update, an increase
// after them.
func insertOrdered(list []ResizeContainer, rc ResizeContainer, decrease bool) []ResizeContainer {
	if decrease {
		return append([]ResizeContainer{rc}, list...)
	}
	return append(list, rc)
}
