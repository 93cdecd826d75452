package runtime

import (
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/internal/container"
)

// Event reasons of the upstream kubelet (pkg/kubelet/events).
const (
	eventCreated                = "Created"
	eventStarted                = "Started"
	eventFailed                 = "Failed"
	eventKilling                = "Killing"
	eventBackOff                = "BackOff"
	eventSandboxChanged         = "SandboxChanged"
	eventFailedCreatePodSandBox = "FailedCreatePodSandBox"
	eventFailedPodSandBoxStatus = "FailedPodSandBoxStatus"
	// eventFailedToCreatePodContainer: the pod's cgroup could not be made.
	eventFailedToCreatePodContainer = "FailedToCreatePodContainer"
	// reasonOOMKilled is the runtime's reason for a container the kernel
	// killed for its memory limit.
	reasonOOMKilled            = "OOMKilled"
	eventFailedPostStartHook   = "FailedPostStartHook"
	eventFailedPreStopHook     = "FailedPreStopHook"
	eventLifecycleHTTPFallback = "LifecycleHTTPFallback"

	eventInvalidEnvironmentVariableNames = "InvalidEnvironmentVariableNames"
)

// podIdentity is what events need to name a pod; orphans have no spec.
type podIdentity struct {
	name, namespace string
	uid             types.UID
	resourceVersion string
	// pod, when there is a spec (not for orphans), names the containers'
	// fields.
	pod *v1.Pod
}

func identityOf(pod *v1.Pod) podIdentity {
	return podIdentity{name: pod.Name, namespace: pod.Namespace, uid: pod.UID, resourceVersion: pod.ResourceVersion, pod: pod}
}

func (p podIdentity) ref(fieldPath string) *v1.ObjectReference {
	return &v1.ObjectReference{
		Kind:            "Pod",
		APIVersion:      "v1",
		Name:            p.name,
		Namespace:       p.namespace,
		UID:             p.uid,
		ResourceVersion: p.resourceVersion,
		FieldPath:       fieldPath,
	}
}

// containerRef references container name within the pod, as upstream's
// GenerateContainerRef does.
func (p podIdentity) containerRef(name string) *v1.ObjectReference {
	return p.ref(container.FieldPath(p.pod, name))
}

func (m *Manager) podEvent(id podIdentity, eventType, reason, msg string) {
	if m.recorder != nil {
		m.recorder.Event(id.ref(""), eventType, reason, msg)
	}
}

// containerEvent records an event about a container. Runtime errors often
// quote the container ID; it is replaced by the name so that repeated
// events about the same container deduplicate (as upstream does).
func (m *Manager) containerEvent(id podIdentity, name, containerID, eventType, reason, msg string) {
	if m.recorder == nil {
		return
	}
	if containerID != "" {
		msg = strings.ReplaceAll(msg, containerID, name)
	}
	m.recorder.Event(id.containerRef(name), eventType, reason, msg)
}

// noteEvents records the events a pure conversion asked for.
func (m *Manager) noteEvents(id podIdentity, notes []eventNote) {
	if m.recorder == nil {
		return
	}
	for _, n := range notes {
		if n.onNode {
			node := &v1.ObjectReference{Kind: "Node", Name: m.opts.NodeName, UID: types.UID(m.opts.NodeName)}
			m.recorder.Event(node, n.eventType, n.reason, n.message)
			continue
		}
		m.recorder.Event(id.ref(""), n.eventType, n.reason, n.message)
	}
}
