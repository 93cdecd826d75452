package admission

import (
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
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

// podRequests is what a pod asks for, overhead included: upstream's
// effective request (component-helpers resource.PodRequests).
func podRequests(pod *v1.Pod) v1.ResourceList {
	reqs := requestsWithoutOverhead(pod)
	addList(reqs, pod.Spec.Overhead)
	return reqs
}

// requestsWithoutOverhead sums the requests of the app containers and of
// the sidecars (restartable init containers), which run alongside them;
// a plain init container runs alone, next to the sidecars started before
// it, so the pod needs the larger of the two. Pod-level requests of cpu,
// memory and hugepages, where given, replace the containers' sum.
func requestsWithoutOverhead(pod *v1.Pod) v1.ResourceList {
	reqs := v1.ResourceList{}
	for i := range pod.Spec.Containers {
		addList(reqs, pod.Spec.Containers[i].Resources.Requests)
	}
	sidecars := v1.ResourceList{}
	initPeak := v1.ResourceList{}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		running := v1.ResourceList{}
		if isSidecar(c) {
			addList(reqs, c.Resources.Requests)
			addList(sidecars, c.Resources.Requests)
			addList(running, sidecars)
		} else {
			addList(running, c.Resources.Requests)
			addList(running, sidecars)
		}
		maxList(initPeak, running)
	}
	maxList(reqs, initPeak)

	if r := pod.Spec.Resources; r != nil && hasPodLevelRequests(r.Requests) {
		for name, q := range r.Requests {
			if isPodLevelResource(name) {
				reqs[name] = q.DeepCopy()
			}
		}
	}
	return reqs
}

func isSidecar(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

// isPodLevelResource: the resources a pod may request as a whole.
func isPodLevelResource(name v1.ResourceName) bool {
	return name == v1.ResourceCPU || name == v1.ResourceMemory || strings.HasPrefix(string(name), v1.ResourceHugePagesPrefix)
}

func hasPodLevelRequests(l v1.ResourceList) bool {
	for name := range l {
		if isPodLevelResource(name) {
			return true
		}
	}
	return false
}

func addList(into, l v1.ResourceList) {
	for name, q := range l {
		if cur, ok := into[name]; ok {
			cur.Add(q)
			into[name] = cur
		} else {
			into[name] = q.DeepCopy()
		}
	}
}

func maxList(into, l v1.ResourceList) {
	for name, q := range l {
		if cur, ok := into[name]; !ok || q.Cmp(cur) > 0 {
			into[name] = q.DeepCopy()
		}
	}
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
		used.add(podRequests(p))
	}
	var want amounts
	want.add(podRequests(pod))
	// An extended resource the node does not advertise is left to a
	// cluster-level allocator (or DRA); the node cannot judge it.
	for name := range want.scalar {
		if _, ok := allocatable.scalar[name]; isExtendedResource(name) && !ok {
			delete(want.scalar, name)
		}
	}

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
