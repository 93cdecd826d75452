package runtime

import (
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/cm"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
)

// resizePod carries out an in-place resize, as upstream's
// doPodResizeAction: memory first, then cpu; for each, the pod cgroup's
// increases, then the containers (decreases first, as planned) through
// CRI UpdateContainerResources, then the pod cgroup's decreases. It stops
// at the first error; the next sync plans what is left. What each
// container got is recorded (actuated) as soon as the runtime accepted it.
func (m *Manager) resizePod(ctx context.Context, rs internalapi.RuntimeService, pod *v1.Pod, r *plan.Resize) error {
	logger := klog.FromContext(ctx)
	current := map[string]plan.ResourceValues{}
	for _, list := range [][]plan.ResizeContainer{r.Memory, r.CPU} {
		for _, rc := range list {
			current[rc.Name] = rc.Current
		}
	}
	// A limit below what the container uses now would be refused half
	// way (or kill it): check first, as upstream does.
	if err := m.checkMemoryDecrease(ctx, rs, r.Memory); err != nil {
		return err
	}
	steps := []struct {
		name v1.ResourceName
		list []plan.ResizeContainer
	}{{v1.ResourceMemory, r.Memory}, {v1.ResourceCPU, r.CPU}}
	for _, step := range steps {
		if len(step.list) == 0 && !r.Pod {
			continue
		}
		if err := m.resizePodCgroup(ctx, pod, step.name, true); err != nil {
			return err
		}
		for _, rc := range step.list {
			next := current[rc.Name]
			if step.name == v1.ResourceMemory {
				next.MemoryRequest, next.MemoryLimit = rc.Desired.MemoryRequest, rc.Desired.MemoryLimit
			} else {
				next.CPURequest, next.CPULimit = rc.Desired.CPURequest, rc.Desired.CPULimit
			}
			if err := m.updateContainerResources(ctx, rs, pod, rc, next); err != nil {
				return err
			}
			current[rc.Name] = next
		}
		if err := m.resizePodCgroup(ctx, pod, step.name, false); err != nil {
			return err
		}
	}
	if r.PodLevel {
		m.recordPodLevel(pod, true)
	}
	logger.V(2).Info("Resized pod in place", "memory", len(r.Memory), "cpu", len(r.CPU), "podLevel", r.PodLevel)
	return nil
}

// recordPodLevel records the pod's allocated pod-level resources as those
// of its cgroup: after an in-place resize (always), or once the cgroup is
// created (unless a record exists: a cgroup that was already there kept
// its values, and the next sync resizes it if they are not the allocated
// ones).
func (m *Manager) recordPodLevel(pod *v1.Pod, resized bool) {
	if m.opts.Resources == nil || pod.Spec.Resources == nil {
		return
	}
	if _, ok := m.opts.Resources.ActuatedPodLevel(pod.UID); ok && !resized {
		return
	}
	m.opts.Resources.SetActuatedPodLevel(pod.UID, pod.Spec.Resources)
}

// checkMemoryDecrease refuses memory limits set or lowered below the
// container's current usage (upstream's validateMemoryResizeAction, for
// the containers; the pod's limit is their sum).
func (m *Manager) checkMemoryDecrease(ctx context.Context, rs internalapi.RuntimeService, list []plan.ResizeContainer) error {
	var errs []string
	for _, rc := range list {
		want := rc.Desired.MemoryLimit
		if want == 0 || (rc.Current.MemoryLimit != 0 && want >= rc.Current.MemoryLimit) {
			continue
		}
		st, err := rs.ContainerStats(ctx, rc.ID)
		if err != nil {
			return fmt.Errorf("unable to read memory usage of container %q: %w", rc.Name, m.wrap(err))
		}
		mem := st.GetMemory()
		usage := mem.GetUsageBytes()
		if usage == nil {
			usage = mem.GetWorkingSetBytes()
		}
		if usage == nil {
			errs = append(errs, fmt.Sprintf("missing container %q memory usage", rc.Name))
		} else if usage.GetValue() >= uint64(want) {
			errs = append(errs, fmt.Sprintf("attempting to set container %q memory limit (%d) below current usage (%d)", rc.Name, want, usage.GetValue()))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	if len(errs) == 1 {
		return fmt.Errorf("cannot decrease memory limits: %s", errs[0])
	}
	return fmt.Errorf("cannot decrease memory limits: [%s]", strings.Join(errs, ", "))
}

func (m *Manager) resizePodCgroup(ctx context.Context, pod *v1.Pod, name v1.ResourceName, grow bool) error {
	if m.opts.PodCgroupResizer == nil {
		return nil
	}
	if err := m.opts.PodCgroupResizer.ResizePodCgroup(ctx, pod, name, grow); err != nil {
		return fmt.Errorf("set pod cgroup %s config: %w", name, err)
	}
	return nil
}

// updateContainerResources applies values to one running container.
func (m *Manager) updateContainerResources(ctx context.Context, rs internalapi.RuntimeService, pod *v1.Pod, rc plan.ResizeContainer, values plan.ResourceValues) error {
	spec := containerSpec(pod, rc.Name)
	if spec == nil {
		return fmt.Errorf("container %q is not in the pod spec", rc.Name)
	}
	c := spec.DeepCopy()
	c.Resources = requirementsOf(values)
	lcr := containerResources(pod, c, &m.node)
	if err := rs.UpdateContainerResources(ctx, rc.ID, &runtimeapi.ContainerResources{Linux: lcr}); err != nil {
		return fmt.Errorf("update resources of container %q: %w", rc.Name, m.wrap(err))
	}
	if m.opts.Resources != nil {
		if err := m.opts.Resources.SetActuated(pod.UID, rc.Name, c.Resources); err != nil {
			klog.FromContext(ctx).Error(err, "Failed to record a container's resources", "container", rc.Name)
		}
	}
	return nil
}

// recordActuated records the resources a container was just started with.
func (m *Manager) recordActuated(ctx context.Context, pod *v1.Pod, c *v1.Container) {
	if m.opts.Resources == nil {
		return
	}
	if err := m.opts.Resources.SetActuated(pod.UID, c.Name, c.Resources); err != nil {
		klog.FromContext(ctx).Error(err, "Failed to record a container's resources", "container", c.Name)
	}
}

func containerSpec(pod *v1.Pod, name string) *v1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// requirementsOf turns resize values back into resource requirements;
// zero values stay unset.
func requirementsOf(v plan.ResourceValues) v1.ResourceRequirements {
	var r v1.ResourceRequirements
	put := func(l *v1.ResourceList, name v1.ResourceName, q *resource.Quantity) {
		if q.IsZero() {
			return
		}
		if *l == nil {
			*l = v1.ResourceList{}
		}
		(*l)[name] = *q
	}
	put(&r.Requests, v1.ResourceCPU, resource.NewMilliQuantity(v.CPURequest, resource.DecimalSI))
	put(&r.Limits, v1.ResourceCPU, resource.NewMilliQuantity(v.CPULimit, resource.DecimalSI))
	put(&r.Requests, v1.ResourceMemory, resource.NewQuantity(v.MemoryRequest, resource.BinarySI))
	put(&r.Limits, v1.ResourceMemory, resource.NewQuantity(v.MemoryLimit, resource.BinarySI))
	return r
}

// statusResources are a container's cgroup values as the runtime reports
// them (upstream's toKubeContainerResources), completed from what berth
// applied (actuated): the memory request has no cgroup value, and a
// runtime may report nothing.
func statusResources(r *runtimeapi.ContainerResources, actuated *v1.ResourceRequirements) *container.Resources {
	var out *container.Resources
	if lr := r.GetLinux(); lr != nil {
		var res container.Resources
		if lr.CpuPeriod > 0 {
			if milli := cm.QuotaToMilliCPU(lr.CpuQuota, lr.CpuPeriod); milli > 0 {
				res.CPULimit = resource.NewMilliQuantity(milli, resource.DecimalSI)
			}
		}
		if lr.CpuShares > 0 {
			if milli := cm.SharesToMilliCPU(lr.CpuShares); milli > 0 {
				res.CPURequest = resource.NewMilliQuantity(milli, resource.DecimalSI)
			}
		}
		if lr.MemoryLimitInBytes > 0 {
			res.MemoryLimit = resource.NewQuantity(lr.MemoryLimitInBytes, resource.BinarySI)
		}
		if res.CPULimit != nil || res.CPURequest != nil || res.MemoryLimit != nil {
			out = &res
		}
	}
	if actuated == nil || (out != nil && out.MemoryRequest != nil) {
		return out
	}
	if out == nil {
		return &container.Resources{
			CPURequest:    actuated.Requests.Cpu(),
			CPULimit:      actuated.Limits.Cpu(),
			MemoryRequest: actuated.Requests.Memory(),
			MemoryLimit:   actuated.Limits.Memory(),
		}
	}
	if q := actuated.Requests[v1.ResourceMemory]; !q.IsZero() {
		out.MemoryRequest = &q
	}
	return out
}
