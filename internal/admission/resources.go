package admission

import (
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	resourcehelper "k8s.io/component-helpers/resource"
)

// amounts are resource quantities in the units the fit is computed in:
// milli-CPU, bytes, and plain counts.
type amounts struct {
	milliCPU, memory, ephemeralStorage int64
	pods                               int64
	scalar                             map[v1.ResourceName]int64
}

// add adds a resource list, as the scheduler's Resource.Add: resources it
// does not account (such as "storage") are dropped.
func (a *amounts) add(l v1.ResourceList) {
	for name, q := range l {
		switch name {
		case v1.ResourceCPU:
			a.milliCPU += q.MilliValue()
		case v1.ResourceMemory:
			a.memory += q.Value()
		case v1.ResourceEphemeralStorage:
			a.ephemeralStorage += q.Value()
		case v1.ResourcePods:
			a.pods += q.Value()
		default:
			if isScalarResource(name) {
				if a.scalar == nil {
					a.scalar = map[v1.ResourceName]int64{}
				}
				a.scalar[name] += q.Value()
			}
		}
	}
}

// withoutUnjudgeableRequests returns pod with the container requests for
// extended resources that the node cannot judge removed, as upstream's
// removeMissingExtendedResources: those the node does not advertise (left
// to a cluster-level allocator) and those a DRA claim provides. Overhead
// and pod-level requests stay. pod is not modified.
func withoutUnjudgeableRequests(pod *v1.Pod, allocatable amounts) *v1.Pod {
	backedByDRA := func(name v1.ResourceName, container string) bool {
		st := pod.Status.ExtendedResourceClaimStatus
		if st == nil {
			return false
		}
		for _, m := range st.RequestMappings {
			if v1.ResourceName(m.ResourceName) == name && m.ContainerName == container {
				return true
			}
		}
		return false
	}
	filter := func(cs []v1.Container) []v1.Container {
		out := make([]v1.Container, len(cs))
		for i := range cs {
			out[i] = cs[i]
			reqs := make(v1.ResourceList, len(cs[i].Resources.Requests))
			for name, q := range cs[i].Resources.Requests {
				if isDRAExtendedResource(name) && backedByDRA(name, cs[i].Name) {
					continue
				}
				if _, ok := allocatable.scalar[name]; isExtendedResource(name) && !ok {
					continue
				}
				reqs[name] = q
			}
			out[i].Resources.Requests = reqs
		}
		return out
	}
	p := *pod
	p.Spec.Containers = filter(pod.Spec.Containers)
	p.Spec.InitContainers = filter(pod.Spec.InitContainers)
	return &p
}

// fitResources checks that the node's allocatable resources hold the
// requests of others plus pod, and returns a failure per resource in short
// supply: pods, cpu, memory, ephemeral-storage, then the scalar resources by
// name.
func fitResources(pod *v1.Pod, node *v1.Node, others []*v1.Pod) []failure {
	var allocatable amounts
	allocatable.add(node.Status.Allocatable)
	var used amounts
	for _, p := range others {
		// As upstream's scheduler NodeInfo counts an admitted pod: the
		// larger of spec and status (the allocated or actuated resources
		// of an in-place resize), pod-level requests, overhead.
		used.add(resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{
			UseStatusResources: true, InPlacePodLevelResourcesVerticalScalingEnabled: true,
		}))
	}
	var want amounts
	want.add(resourcehelper.PodRequests(withoutUnjudgeableRequests(pod, allocatable), resourcehelper.PodResourcesOptions{}))

	var failures []failure
	short := func(name v1.ResourceName, requested, used, capacity int64) {
		reason := ReasonOutOfPrefix + string(name)
		failures = append(failures, failure{
			reason: reason,
			message: fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d",
				name, requested, used, capacity),
			resource: name,
			shortage: requested - (capacity - used),
		})
	}

	if int64(len(others))+1 > allocatable.pods {
		short(v1.ResourcePods, 1, int64(len(others)), allocatable.pods)
	}
	if want.milliCPU == 0 && want.memory == 0 && want.ephemeralStorage == 0 && len(want.scalar) == 0 {
		return failures
	}
	if want.milliCPU > 0 && want.milliCPU > allocatable.milliCPU-used.milliCPU {
		short(v1.ResourceCPU, want.milliCPU, used.milliCPU, allocatable.milliCPU)
	}
	if want.memory > 0 && want.memory > allocatable.memory-used.memory {
		short(v1.ResourceMemory, want.memory, used.memory, allocatable.memory)
	}
	if want.ephemeralStorage > 0 && want.ephemeralStorage > allocatable.ephemeralStorage-used.ephemeralStorage {
		short(v1.ResourceEphemeralStorage, want.ephemeralStorage, used.ephemeralStorage, allocatable.ephemeralStorage)
	}
	names := make([]v1.ResourceName, 0, len(want.scalar))
	for name := range want.scalar {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		q := want.scalar[name]
		if q > 0 && q > allocatable.scalar[name]-used.scalar[name] {
			short(name, q, used.scalar[name], allocatable.scalar[name])
		}
	}
	return failures
}

// isScalarResource: the resources beyond cpu, memory, ephemeral-storage and
// pods that the fit counts (upstream's IsScalarResourceName).
func isScalarResource(name v1.ResourceName) bool {
	s := string(name)
	return isExtendedResource(name) ||
		strings.HasPrefix(s, v1.ResourceHugePagesPrefix) ||
		strings.Contains(s, v1.ResourceDefaultNamespacePrefix) ||
		strings.HasPrefix(s, v1.ResourceAttachableVolumesPrefix)
}

// isDRAExtendedResource: an extended resource, or the implicit one a
// device class stands for (upstream's schedutil.IsDRAExtendedResourceName).
func isDRAExtendedResource(name v1.ResourceName) bool {
	return isExtendedResource(name) || strings.HasPrefix(string(name), resourceapi.ResourceDeviceClassPrefix)
}

// isExtendedResource: a resource outside the kubernetes.io namespace, such
// as "example.com/gpu".
func isExtendedResource(name v1.ResourceName) bool {
	s := string(name)
	native := !strings.Contains(s, "/") || strings.Contains(s, v1.ResourceDefaultNamespacePrefix)
	if native || strings.HasPrefix(s, v1.DefaultResourceRequestsPrefix) {
		return false
	}
	return len(validation.IsQualifiedName(v1.DefaultResourceRequestsPrefix+s)) == 0
}
