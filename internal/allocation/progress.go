package allocation

import (
	"encoding/json"
	"fmt"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
)

// Event reasons of a resize, upstream's.
const (
	EventResizeDeferred   = "ResizeDeferred"
	EventResizeInfeasible = "ResizeInfeasible"
	EventResizeCompleted  = "ResizeCompleted"
	EventResizeStarted    = "ResizeStarted"
	EventResizeError      = "ResizeError"
)

// InProgress reports whether a running container of the allocated pod
// has not yet been given its allocated cpu and memory (upstream's
// IsPodResizeInProgress). A container without a record of what it was
// given counts as done (see plan.resizeAction).
func InProgress(allocated *v1.Pod, st *container.PodStatus) bool {
	check := func(c *v1.Container) bool {
		cs := st.FindContainer(c.Name)
		if cs == nil || cs.State != container.StateRunning || cs.Actuated == nil {
			return false
		}
		return plan.EffectiveValues(allocated.Spec.Resources, &c.Resources) != plan.EffectiveValues(st.ActuatedPodLevel, cs.Actuated)
	}
	for i := range allocated.Spec.InitContainers {
		if c := &allocated.Spec.InitContainers[i]; IsResizable(c, true) && check(c) {
			return true
		}
	}
	for i := range allocated.Spec.Containers {
		if check(&allocated.Spec.Containers[i]) {
			return true
		}
	}
	// The pod cgroup, once berth recorded what it applied there.
	return st.ActuatedPodLevel != nil && st.IsRunning() && plan.PodLevelDiffers(allocated.Spec.Resources, st.ActuatedPodLevel)
}

type containerAllocation struct {
	Name      string                  `json:"name"`
	Resources v1.ResourceRequirements `json:"resources,omitempty"`
}

type podResourceSummary struct {
	InitContainers []containerAllocation `json:"initContainers,omitempty"`
	Containers     []containerAllocation `json:"containers,omitempty"`
	Generation     int64                 `json:"generation"`
	Error          string                `json:"error,omitempty"`
}

// Message is an event message of a resize as upstream writes it: the
// prefix ("Pod resize started", "Pod resize Deferred", ...) and the pod's
// resources as JSON.
func Message(pod *v1.Pod, generation int64, errMsg, prefix string) string {
	s := podResourceSummary{Generation: generation, Error: errMsg}
	for _, c := range pod.Spec.InitContainers {
		s.InitContainers = append(s.InitContainers, containerAllocation{Name: c.Name, Resources: c.Resources})
	}
	for _, c := range pod.Spec.Containers {
		s.Containers = append(s.Containers, containerAllocation{Name: c.Name, Resources: c.Resources})
	}
	b, err := json.Marshal(s)
	if err != nil {
		return prefix
	}
	return fmt.Sprintf("%s: %s", prefix, b)
}
