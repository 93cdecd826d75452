package container

import (
	v1 "k8s.io/api/core/v1"
)

// PodQOS is the pod's QoS class, computed as upstream's ComputePodQOS
// (once set it never changes). BestEffort: no cpu or memory requests or
// limits anywhere; Guaranteed: every container has cpu and memory limits
// equal to its requests; else Burstable. Pod-level resources, when set,
// decide alone. A limit without a request counts as a request of the same
// amount, as API defaulting makes it.
func PodQOS(pod *v1.Pod) v1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	if r := pod.Spec.Resources; r != nil && hasCPUOrMemory(r) {
		return requirementsQOS(r)
	}
	var qos v1.PodQOSClass
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			c := requirementsQOS(&list[i].Resources)
			switch {
			case c == v1.PodQOSBurstable:
				return c
			case qos == "":
				qos = c
			case qos != c:
				return v1.PodQOSBurstable // Guaranteed and BestEffort mixed
			}
		}
	}
	if qos == "" {
		return v1.PodQOSBestEffort
	}
	return qos
}

var qosResources = []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory}

func hasCPUOrMemory(r *v1.ResourceRequirements) bool {
	for _, name := range qosResources {
		if _, ok := r.Requests[name]; ok {
			return true
		}
		if _, ok := r.Limits[name]; ok {
			return true
		}
	}
	return false
}

// requirementsQOS classifies one set of requirements: each of cpu and memory
// is BestEffort (neither set), Guaranteed (request == limit) or Burstable;
// they must agree for the set to be other than Burstable.
func requirementsQOS(r *v1.ResourceRequirements) v1.PodQOSClass {
	if len(r.Requests) == 0 && len(r.Limits) == 0 {
		return v1.PodQOSBestEffort
	}
	var qos v1.PodQOSClass
	for _, name := range qosResources {
		lim := r.Limits[name]
		req, ok := r.Requests[name]
		if !ok {
			req = lim
		}
		var c v1.PodQOSClass
		switch {
		case !req.Equal(lim):
			return v1.PodQOSBurstable
		case req.IsZero():
			c = v1.PodQOSBestEffort
		default:
			c = v1.PodQOSGuaranteed
		}
		if qos == "" {
			qos = c
		} else if qos != c {
			return v1.PodQOSBurstable
		}
	}
	return qos
}
