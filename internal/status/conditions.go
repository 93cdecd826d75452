package status

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// KubeletOwnsCondition reports whether the kubelet owns condition type t:
// it computes the condition, and its value replaces any other; every other
// condition on the pod (set by controllers, readiness gates) is carried over
// as it is. This is upstream's kubetypes.PodConditionByKubelet with the
// v1.37 feature defaults. berth never sets AllContainersRestarting (it does
// not implement container restart rules), so that one is never reported, as
// upstream for a pod without such rules. DisruptionTarget is shared, not
// owned: see conditions and apistatus.
func KubeletOwnsCondition(t v1.PodConditionType) bool {
	switch t {
	case v1.PodScheduled, v1.PodReady, v1.PodInitialized, v1.ContainersReady,
		v1.PodResizeInProgress, v1.PodResizePending,
		v1.PodReadyToStartContainers, v1.AllContainersRestarting:
		return true
	}
	return false
}

// conditions returns the pod's conditions: the ones berth doesn't own, then
// PodReadyToStartContainers, Initialized, Ready, ContainersReady and
// PodScheduled (upstream's order). A condition keeps its old transition time
// while its status stays the same.
func conditions(in Input, s *v1.PodStatus) []v1.PodCondition {
	pod := in.Pod
	out := make([]v1.PodCondition, 0, len(pod.Status.Conditions)+5)
	for _, c := range pod.Status.Conditions {
		if !KubeletOwnsCondition(c.Type) && c.Type != v1.DisruptionTarget {
			out = append(out, c)
		}
	}
	// The resize conditions, as upstream places them; a terminal pod has
	// none.
	if !isTerminal(s.Phase) {
		for _, c := range in.ResizeConditions {
			out = append(out, *c.DeepCopy())
		}
	}
	// DisruptionTarget is set once, when berth decides to evict or shut
	// down; it is not recomputed, only carried over.
	if c := findCondition(in.Old.Conditions, v1.DisruptionTarget); c != nil {
		out = append(out, *c)
	} else if c := findCondition(pod.Status.Conditions, v1.DisruptionTarget); c != nil {
		out = append(out, *c)
	} else if in.Evicted != nil && in.Evicted.Condition != nil {
		c := *in.Evicted.Condition
		c.LastTransitionTime = in.Now
		out = append(out, c)
	}

	all := make([]v1.ContainerStatus, 0, len(s.InitContainerStatuses)+len(s.ContainerStatuses))
	all = append(append(all, s.InitContainerStatuses...), s.ContainerStatuses...)
	containersReady := containersReadyCondition(pod, all, s.Phase)
	ours := []v1.PodCondition{
		readyToStartCondition(in.Runtime),
		initializedCondition(pod, all, s.Phase),
		readyCondition(pod, containersReady, out),
		containersReady,
		{Type: v1.PodScheduled, Status: v1.ConditionTrue},
	}
	for _, c := range ours {
		c.ObservedGeneration = pod.Generation
		c.LastTransitionTime = in.Now
		if old := findCondition(in.Old.Conditions, c.Type); old != nil && old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		out = append(out, c)
	}
	return out
}

// readyToStartCondition is True when the pod has a ready sandbox, with its
// network set up, to start containers in.
func readyToStartCondition(rt *container.PodStatus) v1.PodCondition {
	if needed, why := rt.NeedsNewSandbox(); needed {
		return v1.PodCondition{Type: v1.PodReadyToStartContainers, Status: v1.ConditionFalse,
			Reason: ReasonPodSandboxNotReady, Message: why}
	}
	return v1.PodCondition{Type: v1.PodReadyToStartContainers, Status: v1.ConditionTrue}
}

// initializedCondition is True when every init container completed (a
// sidecar: started), or once any app container ran.
func initializedCondition(pod *v1.Pod, all []v1.ContainerStatus, phase v1.PodPhase) v1.PodCondition {
	var unknown, incomplete []string
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		cs := find(all, spec.Name)
		switch {
		case cs == nil:
			unknown = append(unknown, spec.Name)
		case container.IsSidecar(spec) && (cs.Started == nil || !*cs.Started),
			!container.IsSidecar(spec) && !cs.Ready:
			incomplete = append(incomplete, spec.Name)
		}
	}
	done := v1.PodCondition{Type: v1.PodInitialized, Status: v1.ConditionTrue}
	if phase == v1.PodSucceeded && len(unknown) == 0 {
		done.Reason = ReasonPodCompleted
		return done
	}
	if anyAppContainerStarted(pod, all) {
		return done
	}
	if msg := joinMessages("containers with unknown status", unknown, "containers with incomplete status", incomplete); msg != "" {
		return v1.PodCondition{Type: v1.PodInitialized, Status: v1.ConditionFalse,
			Reason: ReasonContainersNotInitialized, Message: msg}
	}
	return done
}

// containersReadyCondition is True when every app container and sidecar is
// ready; in a terminal phase it is False with the phase as reason.
func containersReadyCondition(pod *v1.Pod, all []v1.ContainerStatus, phase v1.PodPhase) v1.PodCondition {
	var unknown, unready []string
	check := func(name string) {
		switch cs := find(all, name); {
		case cs == nil:
			unknown = append(unknown, name)
		case !cs.Ready:
			unready = append(unready, name)
		}
	}
	for i := range pod.Spec.InitContainers {
		if container.IsSidecar(&pod.Spec.InitContainers[i]) {
			check(pod.Spec.InitContainers[i].Name)
		}
	}
	for i := range pod.Spec.Containers {
		check(pod.Spec.Containers[i].Name)
	}

	if (phase == v1.PodSucceeded && len(unknown) == 0) || phase == v1.PodFailed {
		reason := ReasonPodCompleted
		if phase == v1.PodFailed {
			reason = ReasonPodFailed
		}
		return v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionFalse, Reason: reason}
	}
	if msg := joinMessages("containers with unknown status", unknown, "containers with unready status", unready); msg != "" {
		return v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionFalse,
			Reason: ReasonContainersNotReady, Message: msg}
	}
	return v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionTrue}
}

// readyCondition is ContainersReady, further gated by the pod's readiness
// gates, whose conditions other components set.
func readyCondition(pod *v1.Pod, containersReady v1.PodCondition, others []v1.PodCondition) v1.PodCondition {
	if containersReady.Status != v1.ConditionTrue {
		return v1.PodCondition{Type: v1.PodReady, Status: containersReady.Status,
			Reason: containersReady.Reason, Message: containersReady.Message}
	}
	var msgs []string
	for _, g := range pod.Spec.ReadinessGates {
		c := findCondition(others, g.ConditionType)
		switch {
		case c == nil:
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
		case c.Status != v1.ConditionTrue:
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", g.ConditionType, c.Status))
		}
	}
	if len(msgs) > 0 {
		return v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse,
			Reason: ReasonReadinessGatesNotReady, Message: strings.Join(msgs, ", ")}
	}
	return v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionTrue}
}

// anyAppContainerStarted reports whether any app container runs or ran.
func anyAppContainerStarted(pod *v1.Pod, all []v1.ContainerStatus) bool {
	for i := range pod.Spec.Containers {
		if cs := find(all, pod.Spec.Containers[i].Name); cs != nil &&
			(cs.State.Running != nil || cs.State.Terminated != nil) {
			return true
		}
	}
	return false
}

// joinMessages formats upstream's "containers with unknown status: [a b],
// containers with unready status: [c]", skipping empty lists.
func joinMessages(label1 string, names1 []string, label2 string, names2 []string) string {
	var parts []string
	if len(names1) > 0 {
		parts = append(parts, fmt.Sprintf("%s: %s", label1, names1))
	}
	if len(names2) > 0 {
		parts = append(parts, fmt.Sprintf("%s: %s", label2, names2))
	}
	return strings.Join(parts, ", ")
}

func findCondition(list []v1.PodCondition, t v1.PodConditionType) *v1.PodCondition {
	for i := range list {
		if list[i].Type == t {
			return &list[i]
		}
	}
	return nil
}
