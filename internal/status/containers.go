package status

import (
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/internal/container"
)

// containerStatuses builds the statuses of one list of spec containers (init,
// app or ephemeral), in spec order, following upstream's
// convertToAPIContainerStatuses:
//
//   - a container the runtime never reported waits (ContainerCreating, or
//     PodInitializing in a pod with init containers), keeping the restart
//     count and last termination from the old status; a terminated one keeps
//     its old status whole (the runtime may have garbage-collected it);
//   - otherwise the newest runtime container gives the state, the one
//     before it the last termination state (or, once that one is removed,
//     the last termination state reported with the newest);
//   - a container that is to be (re)started and that the last sync could not
//     start shows why, from Input.Waiting.
func containerStatuses(in Input, specs []v1.Container, previous []v1.ContainerStatus, kind containerKind) []v1.ContainerStatus {
	if len(specs) == 0 {
		return nil
	}
	pod := in.Pod
	olds := make(map[string]*v1.ContainerStatus, len(previous))
	for i := range previous {
		olds[previous[i].Name] = &previous[i]
	}
	defaultReason := ReasonContainerCreating
	if len(pod.Spec.InitContainers) > 0 {
		defaultReason = ReasonPodInitializing
	}

	out := make([]v1.ContainerStatus, len(specs))
	for i := range specs {
		spec := &specs[i]
		old := olds[spec.Name]
		history := in.Runtime.ContainersNamed(spec.Name)

		var cs v1.ContainerStatus
		switch {
		case len(history) > 0:
			cs = convert(in, spec, history[0], old)
			switch {
			case len(history) > 1:
				cs.LastTerminationState = convert(in, spec, history[1], old).State
			case old != nil && old.ContainerID == cs.ContainerID:
				// The instance before was garbage-collected once this one
				// exited (berth keeps the newest exited one): what the
				// status said of it stands.
				cs.LastTerminationState = *old.LastTerminationState.DeepCopy()
			}
		case old != nil && old.State.Terminated != nil:
			cs = *old.DeepCopy()
		default:
			cs = v1.ContainerStatus{
				Name:  spec.Name,
				Image: spec.Image,
				State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: defaultReason}},
			}
			if old != nil {
				cs.RestartCount = old.RestartCount
				cs.LastTerminationState = *old.LastTerminationState.DeepCopy()
				if old.State.Running != nil && cs.LastTerminationState.Terminated == nil {
					// It ran and is gone without a trace: it did terminate, so
					// say so rather than report it as never started (which
					// would turn the pod Pending again).
					cs.LastTerminationState.Terminated = &v1.ContainerStateTerminated{
						Reason:   ReasonContainerStatusUnknown,
						Message:  "The container could not be located when the pod was deleted.  The container used to be Running",
						ExitCode: 137,
					}
					if pod.DeletionTimestamp == nil {
						cs.RestartCount++
					}
				}
			}
		}

		if kind == initContainer {
			var newest *container.ContainerStatus
			if len(history) > 0 {
				newest = history[0]
			}
			if newest != nil && newest.State == container.StateExited && newest.ExitCode == 0 {
				out[i] = cs // done; it won't run again
				continue
			}
			if newest == nil && !container.IsSidecar(spec) && cs.State.Waiting != nil &&
				container.AnyRegularContainerCreated(pod, in.Runtime) {
				// Removed from the runtime, but app containers exist, so it
				// completed.
				cs.State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
					Reason:   "Completed",
					Message:  "Unable to get init container status from container runtime and pod has been initialized, treat it as exited normally",
					ExitCode: 0,
				}}
				out[i] = cs
				continue
			}
		}
		if w, ok := in.Waiting[spec.Name]; ok && toStart(in, spec, kind) {
			if cs.State.Terminated != nil {
				cs.LastTerminationState = cs.State
			}
			cs.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}}
		}
		out[i] = cs
	}
	return out
}

// containerKind says which list of the spec a container is in.
type containerKind int

const (
	appContainer containerKind = iota
	initContainer
	ephemeralContainer
)

// toStart reports whether a container is still to be (re)started, so that
// why it could not start yet (Input.Waiting) is its state. An ephemeral
// container starts once and never again.
func toStart(in Input, spec *v1.Container, kind containerKind) bool {
	if kind == ephemeralContainer {
		return in.Runtime.FindContainer(spec.Name) == nil && in.Pod.DeletionTimestamp == nil
	}
	return container.ShouldRestart(in.Pod, spec, in.Runtime)
}

// ephemeralSpecs returns the pod's ephemeral containers as containers.
func ephemeralSpecs(pod *v1.Pod) []v1.Container {
	if len(pod.Spec.EphemeralContainers) == 0 {
		return nil
	}
	out := make([]v1.Container, len(pod.Spec.EphemeralContainers))
	for i := range pod.Spec.EphemeralContainers {
		out[i] = v1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
	}
	return out
}

// convert turns one runtime container into an API container status.
func convert(in Input, spec *v1.Container, c *container.ContainerStatus, old *v1.ContainerStatus) v1.ContainerStatus {
	id := in.RuntimeName + "://" + c.ID
	image := c.Image
	if image == "" {
		image = spec.Image
	}
	cs := v1.ContainerStatus{
		Name:         spec.Name,
		Image:        image,
		ImageID:      c.ImageRef,
		ContainerID:  id,
		RestartCount: int32(c.RestartCount),
	}
	switch {
	case c.State == container.StateRunning:
		cs.State.Running = &v1.ContainerStateRunning{StartedAt: metav1.NewTime(c.StartedAt)}
		if old != nil && old.ContainerID == id && old.Started != nil {
			started := *old.Started
			cs.Started = &started
		}
	case c.State == container.StateExited:
		cs.State.Terminated = &v1.ContainerStateTerminated{
			ExitCode:    c.ExitCode,
			Reason:      exitReason(c),
			Message:     c.Message,
			StartedAt:   metav1.NewTime(c.StartedAt),
			FinishedAt:  metav1.NewTime(c.FinishedAt),
			ContainerID: id,
		}
	case c.State == container.StateUnknown && old != nil && old.State.Running != nil:
		// It ran and the runtime lost track of it: report that it ended,
		// not that it never started, so a run-once pod is not run twice.
		cs.State.Terminated = &v1.ContainerStateTerminated{
			Reason:   ReasonContainerStatusUnknown,
			Message:  "The container could not be located when the pod was terminated",
			ExitCode: 137,
		}
		cs.RestartCount = old.RestartCount + 1
	default: // created (start failed or pending) or unknown
		cs.State.Waiting = &v1.ContainerStateWaiting{}
	}
	cs.Resources = statusResources(spec, c)
	cs.AllocatedResources = spec.Resources.Requests
	return cs
}

// Below these, the cgroup value of a cpu limit or request says less than
// the spec (upstream's cm.MinMilliCPULimit and MinShares).
const (
	minMilliCPULimit = 10
	minShares        = 2
)

// statusResources are a container's resources as upstream reports them
// (convertContainerStatusResources): those allocated to it (spec is the
// allocated pod's), and for a running container the cpu and memory values
// it actually has where the runtime or berth's record says.
func statusResources(spec *v1.Container, c *container.ContainerStatus) *v1.ResourceRequirements {
	r := spec.Resources.DeepCopy()
	if c.State != container.StateRunning || c.Resources == nil {
		return r
	}
	actual := c.Resources
	if r.Limits != nil {
		if q := actual.CPULimit; q != nil && (q.MilliValue() > minMilliCPULimit || r.Limits.Cpu().MilliValue() > minMilliCPULimit) {
			r.Limits[v1.ResourceCPU] = q.DeepCopy()
		}
		if q := actual.MemoryLimit; q != nil {
			r.Limits[v1.ResourceMemory] = q.DeepCopy()
		}
	}
	if r.Requests != nil {
		if q := actual.CPURequest; q != nil && (q.MilliValue() > minShares || r.Requests.Cpu().MilliValue() > minShares) {
			r.Requests[v1.ResourceCPU] = q.DeepCopy()
		}
		if q := actual.MemoryRequest; q != nil {
			r.Requests[v1.ResourceMemory] = q.DeepCopy()
		}
	}
	return r
}

// exitReason is the runtime's reason for an exit (containerd says
// Completed, Error or OOMKilled), or the same inferred from the exit code
// when the runtime gave none.
func exitReason(c *container.ContainerStatus) string {
	switch {
	case c.Reason != "":
		return c.Reason
	case c.ExitCode == 0:
		return "Completed"
	default:
		return "Error"
	}
}

// setProbeResults sets started and ready on every container status, as
// upstream's prober manager does: a running container is started once its
// startup probe succeeded (or it has none) and ready once its readiness
// probe succeeded (or it has none); a regular init container is ready once
// it exited 0.
func setProbeResults(s *v1.PodStatus, in Input) {
	pod := in.Pod
	for i := range s.ContainerStatuses {
		cs := &s.ContainerStatuses[i]
		spec := &pod.Spec.Containers[i]
		started := isStarted(in, spec, cs)
		cs.Started = &started
		cs.Ready = started && isReady(in, spec, cs, in.Old.ContainerStatuses)
	}
	for i := range s.InitContainerStatuses {
		cs := &s.InitContainerStatuses[i]
		spec := &pod.Spec.InitContainers[i]
		started := isStarted(in, spec, cs)
		cs.Started = &started
		if !container.IsSidecar(spec) {
			cs.Ready = cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
			continue
		}
		cs.Ready = started && isReady(in, spec, cs, in.Old.InitContainerStatuses)
	}
}

func isStarted(in Input, spec *v1.Container, cs *v1.ContainerStatus) bool {
	if cs.State.Running == nil {
		return false
	}
	if in.Probes == nil {
		return true
	}
	if started, known := in.Probes.Startup(rawID(cs.ContainerID)); known {
		return started
	}
	if cs.Started != nil && *cs.Started {
		return true // started before, and berth restarted since
	}
	return spec.StartupProbe == nil
}

// isReady: a container with a readiness probe but no result yet keeps the
// readiness it was last reported with, as upstream does after a kubelet
// restart, so a restart of berth doesn't flap Ready (and endpoints). A new
// container instance has no old status and starts not ready.
func isReady(in Input, spec *v1.Container, cs *v1.ContainerStatus, olds []v1.ContainerStatus) bool {
	if cs.State.Running == nil {
		return false
	}
	if in.Probes == nil {
		return true
	}
	if ready, known := in.Probes.Readiness(rawID(cs.ContainerID)); known {
		return ready
	}
	if spec.ReadinessProbe == nil {
		return true
	}
	old := find(olds, spec.Name)
	return old != nil && old.ContainerID == cs.ContainerID && old.Ready
}

// rawID strips "<runtime>://" from a container ID.
func rawID(id string) string {
	if _, raw, ok := strings.Cut(id, "://"); ok {
		return raw
	}
	return id
}
