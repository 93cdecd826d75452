// Package status computes the API status of a pod from its spec and what the
// runtime reports, as the upstream kubelet does (generateAPIPodStatus and the
// status manager's bookkeeping), and keeps the latest status of each pod.
// Compute is pure; Store is the one owner of reported pod status.
package status

import (
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/internal/cm"
	"github.com/berth-dev/berth/internal/container"
)

// Input is everything Compute looks at.
type Input struct {
	Pod *v1.Pod
	// Old is the status berth last computed for the pod (Store.Get), or
	// Pod.Status when there is none. Compute keeps what must survive from it:
	// start time, condition transition times, terminated containers the
	// runtime no longer knows, restart counts, a terminal phase.
	Old v1.PodStatus
	// Runtime is what the runtime holds for the pod; nil when nothing.
	Runtime *container.PodStatus
	// Waiting says, by container name, why a container that should run does
	// not (the last sync's SyncResult.Waiting).
	Waiting map[string]container.Waiting
	// Probes gives probe results; nil until berth has a prober, and then
	// every running container counts as started and ready.
	Probes Probes
	// RuntimeName prefixes container IDs: "<RuntimeName>://<id>". Default "containerd".
	RuntimeName string
	// NodeIPs are the node's addresses, primary first (at most one per IP
	// family). They become hostIP(s), and podIP(s) of host-network pods.
	NodeIPs []string
	// Terminal is set once the pod worker has stopped the pod for good
	// (deleted or evicted): its containers will not run again whatever the
	// restart policy, so the phase becomes Succeeded or Failed.
	Terminal bool
	// Evicted, when set, makes the phase Failed with its reason and
	// message, whatever the containers say (upstream's PodSyncHandlers:
	// the active deadline).
	Evicted *Eviction
	// Now stamps condition transitions and the start time of a new pod.
	Now metav1.Time
	// ResizeConditions are the pod's PodResizePending and
	// PodResizeInProgress conditions (allocation.Manager), reported
	// unless the pod is terminal.
	ResizeConditions []v1.PodCondition
	// PodCgroup is what berth set on the pod's cgroup (cm.Manager's
	// PodConfig), for status.resources; nil when there is none.
	PodCgroup *cm.ResourceConfig
}

// Eviction is why the pod worker fails a pod for good.
type Eviction struct {
	Reason, Message string
	// Condition, when set, is added once (the DisruptionTarget condition
	// of a pod evicted for node pressure) and carried over from then on.
	Condition *v1.PodCondition
}

// Probes reports probe results for a container, by its runtime ID (without
// the "<runtime>://" prefix). known is false until a probe has a result.
type Probes interface {
	Readiness(containerID string) (ready, known bool)
	Startup(containerID string) (started, known bool)
}

// Waiting reasons, condition reasons and messages, as upstream spells them.
const (
	ReasonContainerCreating        = "ContainerCreating"
	ReasonPodInitializing          = "PodInitializing"
	ReasonContainerStatusUnknown   = "ContainerStatusUnknown"
	ReasonPodCompleted             = "PodCompleted"
	ReasonPodFailed                = "PodFailed"
	ReasonContainersNotReady       = "ContainersNotReady"
	ReasonContainersNotInitialized = "ContainersNotInitialized"
	ReasonReadinessGatesNotReady   = "ReadinessGatesNotReady"
	ReasonPodSandboxNotReady       = "PodSandboxNotReady"
)

// Compute returns the pod's API status.
func Compute(in Input) v1.PodStatus {
	pod := in.Pod
	if in.RuntimeName == "" {
		in.RuntimeName = "containerd"
	}

	s := v1.PodStatus{
		ObservedGeneration: pod.Generation,
		QOSClass:           container.PodQOS(pod),
	}
	setPodIPs(&s, in)
	s.InitContainerStatuses = containerStatuses(in, pod.Spec.InitContainers, in.Old.InitContainerStatuses, initContainer)
	s.ContainerStatuses = containerStatuses(in, pod.Spec.Containers, in.Old.ContainerStatuses, appContainer)
	// Ephemeral containers have no probes: neither started nor ready is
	// set, and they count for neither the phase nor the conditions.
	s.EphemeralContainerStatuses = containerStatuses(in, ephemeralSpecs(pod), in.Old.EphemeralContainerStatuses, ephemeralContainer)
	setProbeResults(&s, in)

	s.Phase = phase(pod, &s, in.Terminal, container.AnyActiveRegularContainer(pod, in.Runtime))
	// A terminal phase is final, whatever the runtime says later.
	switch {
	case isTerminal(s.Phase):
	case isTerminal(in.Old.Phase):
		s.Phase = in.Old.Phase
	case isTerminal(pod.Status.Phase):
		s.Phase = pod.Status.Phase
	}
	if s.Phase == in.Old.Phase {
		// Reason and message belong to the phase (e.g. Evicted).
		s.Reason, s.Message = in.Old.Reason, in.Old.Message
		if s.Reason == "" {
			s.Reason = pod.Status.Reason
		}
		if s.Message == "" {
			s.Message = pod.Status.Message
		}
	}

	if in.Evicted != nil {
		s.Phase, s.Reason, s.Message = v1.PodFailed, in.Evicted.Reason, in.Evicted.Message
	}

	s.Conditions = conditions(in, &s)
	s.AllocatedResources = podAllocatedResources(pod)
	s.Resources = podResources(pod, s.AllocatedResources, in.Old.Phase == v1.PodRunning && s.Phase == v1.PodRunning, in.PodCgroup, in.Old.Resources)

	if len(in.NodeIPs) > 0 {
		s.HostIP = in.NodeIPs[0]
		for i, ip := range in.NodeIPs {
			if i == 2 {
				break
			}
			s.HostIPs = append(s.HostIPs, v1.HostIP{IP: ip})
		}
	}

	if st := in.Old.StartTime; st != nil && !st.IsZero() {
		s.StartTime = st.DeepCopy()
	} else {
		now := in.Now
		s.StartTime = &now
	}

	normalize(pod, &s)
	return s
}

// isTerminal reports whether a phase is one a pod never leaves.
func isTerminal(p v1.PodPhase) bool {
	return p == v1.PodSucceeded || p == v1.PodFailed
}

// IsTerminal reports whether the status is final: the pod succeeded or
// failed and none of its containers will run again.
func IsTerminal(s v1.PodStatus) bool { return isTerminal(s.Phase) }

// maxTerminationMessageBytes bounds the termination messages of all of a
// pod's containers together, as upstream does.
const maxTerminationMessageBytes = 1024 * 12

// normalize rounds times to what the API serializes (seconds), so that a
// status computed twice from the same state compares equal, and trims
// termination messages.
func normalize(pod *v1.Pod, s *v1.PodStatus) {
	perContainer := maxTerminationMessageBytes
	if n := len(pod.Spec.InitContainers) + len(pod.Spec.Containers) + len(pod.Spec.EphemeralContainers); n > 0 {
		perContainer /= n
	}
	round := func(t *metav1.Time) { *t = t.Rfc3339Copy() }
	state := func(cs *v1.ContainerState) {
		if cs.Running != nil {
			round(&cs.Running.StartedAt)
		}
		if t := cs.Terminated; t != nil {
			round(&t.StartedAt)
			round(&t.FinishedAt)
			if len(t.Message) > perContainer {
				t.Message = strings.ToValidUTF8(t.Message[:perContainer], "")
			}
		}
	}
	if s.StartTime != nil {
		round(s.StartTime)
	}
	for i := range s.Conditions {
		round(&s.Conditions[i].LastProbeTime)
		round(&s.Conditions[i].LastTransitionTime)
	}
	for _, list := range [][]v1.ContainerStatus{s.InitContainerStatuses, s.ContainerStatuses, s.EphemeralContainerStatuses} {
		for i := range list {
			state(&list[i].State)
			state(&list[i].LastTerminationState)
		}
	}
}
