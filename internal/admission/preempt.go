package admission

import (
	"fmt"
	"math"
	"strings"

	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/source"
)

func isStatic(pod *v1.Pod) bool { return source.IsStatic(pod) }

func isCritical(pod *v1.Pod) bool { return source.IsCritical(pod) }

// preemptable reports whether preemptor may take victim's resources: a
// critical pod those of any non-critical one, otherwise only a pod of
// higher priority.
func preemptable(preemptor, victim *v1.Pod) bool {
	if isCritical(preemptor) && !isCritical(victim) {
		return true
	}
	return preemptor.Spec.Priority != nil && victim.Spec.Priority != nil &&
		*preemptor.Spec.Priority > *victim.Spec.Priority
}

// requirement is how much of one resource must be freed.
type requirement struct {
	name     v1.ResourceName
	quantity int64
}

type requirements []requirement

func (rs requirements) String() string {
	var b strings.Builder
	b.WriteString("[")
	for _, r := range rs {
		fmt.Fprintf(&b, "(res: %v, q: %d), ", r.name, r.quantity)
	}
	b.WriteString("]")
	return b.String()
}

// without returns what would still be missing if pods were stopped.
func (rs requirements) without(pods ...*v1.Pod) requirements {
	var left requirements
	for _, r := range rs {
		q := r.quantity
		for _, p := range pods {
			if q -= podRequest(p, r.name); q <= 0 {
				break
			}
		}
		if q > 0 {
			left = append(left, requirement{r.name, q})
		}
	}
	return left
}

// distance measures how far stopping pod falls short of rs: for each
// requirement, the square of the fraction it leaves unmet.
func (rs requirements) distance(pod *v1.Pod) float64 {
	d := 0.0
	for _, r := range rs {
		if left := float64(r.quantity - podRequest(pod, r.name)); left > 0 {
			d += math.Pow(left/float64(r.quantity), 2)
		}
	}
	return d
}

// podRequest is the request of one resource of a pod as upstream's
// preemption counts it (pkg/api/v1/resource.GetResourceRequest): 1 for
// "pods"; otherwise the pod-level requests if the pod sets pod-level
// resources, else the containers' effective request, plus the overhead if
// the request is not zero.
func podRequest(pod *v1.Pod, name v1.ResourceName) int64 {
	if name == v1.ResourcePods {
		return 1
	}
	q := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{
		SkipContainerLevelResources: resourcehelper.IsPodLevelResourcesSet(pod),
		ExcludeOverhead:             true,
	})[name].DeepCopy() // Add below must not touch a pod-level quantity of the spec
	if o, ok := pod.Spec.Overhead[name]; ok && !q.IsZero() {
		q.Add(o)
	}
	if name == v1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// podsToPreempt chooses the pods to stop so that the critical pod fits, as
// upstream does: as few and as unimportant as possible. Best-effort pods go
// before burstable ones and those before guaranteed ones; within a class,
// the pod that covers most of what is missing goes first.
func podsToPreempt(pod *v1.Pod, others []*v1.Pod, missing requirements) ([]*v1.Pod, error) {
	var bestEffort, burstable, guaranteed []*v1.Pod
	for _, p := range others {
		if !preemptable(pod, p) {
			continue
		}
		switch container.PodQOS(p) {
		case v1.PodQOSBestEffort:
			bestEffort = append(bestEffort, p)
		case v1.PodQOSBurstable:
			burstable = append(burstable, p)
		case v1.PodQOSGuaranteed:
			guaranteed = append(guaranteed, p)
		}
	}
	all := append(append(append([]*v1.Pod{}, bestEffort...), burstable...), guaranteed...)
	if left := missing.without(all...); len(left) > 0 {
		return nil, fmt.Errorf("no set of running pods found to reclaim resources: %v", left)
	}
	// Take guaranteed pods only for what all others cannot free, then
	// burstable ones for what best-effort pods and those cannot free, then
	// best-effort ones for the rest.
	lower := append(append([]*v1.Pod{}, bestEffort...), burstable...)
	g, err := closestPods(guaranteed, missing.without(lower...))
	if err != nil {
		return nil, err
	}
	b, err := closestPods(burstable, missing.without(append(append([]*v1.Pod{}, bestEffort...), g...)...))
	if err != nil {
		return nil, err
	}
	be, err := closestPods(bestEffort, missing.without(append(append([]*v1.Pod{}, b...), g...)...))
	if err != nil {
		return nil, err
	}
	return append(append(be, b...), g...), nil
}

// closestPods picks pods one at a time, each time the one whose requests
// come closest to what is still missing (the smaller one on a tie), until
// nothing is missing.
func closestPods(candidates []*v1.Pod, missing requirements) ([]*v1.Pod, error) {
	pods := append([]*v1.Pod{}, candidates...)
	var chosen []*v1.Pod
	for len(missing) > 0 {
		if len(pods) == 0 {
			return nil, fmt.Errorf("no set of running pods found to reclaim resources: %v", missing)
		}
		best, bestDistance := 0, float64(len(missing)+1)
		for i, p := range pods {
			d := missing.distance(p)
			if d < bestDistance || (d == bestDistance && smallerRequest(p, pods[best])) {
				best, bestDistance = i, d
			}
		}
		missing = missing.without(pods[best])
		chosen = append(chosen, pods[best])
		pods[best] = pods[len(pods)-1]
		pods = pods[:len(pods)-1]
	}
	return chosen, nil
}

// smallerRequest orders pods by memory request, then cpu request.
func smallerRequest(a, b *v1.Pod) bool {
	for _, name := range []v1.ResourceName{v1.ResourceMemory, v1.ResourceCPU} {
		ra, rb := podRequest(a, name), podRequest(b, name)
		if ra != rb {
			return ra < rb
		}
	}
	return true
}
