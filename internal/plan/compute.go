package plan

import (
	"fmt"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// Reasons in KillInfo.
const (
	ReasonSpecChanged = "SpecChanged" // the spec's hash differs from the running container's
	ReasonUnknown     = "Unknown"     // the runtime cannot say whether the container runs
	ReasonNotInSpec   = "NotInSpec"   // the pod spec has no container of that name

	// A probe failed. The values are internal/runtime's KillReasonLivenessProbe
	// and KillReasonStartupProbe, by which it picks the probe's
	// terminationGracePeriodSeconds; duplicated because plan must not
	// import runtime.
	ReasonLivenessProbe = "LivenessProbe"
	ReasonStartupProbe  = "StartupProbe"
)

// Probes gives the planner probe results by runtime container ID (without
// the "<runtime>://" prefix). known is false until a probe has decided.
// Known and false means the container failed the probe and must be killed.
type Probes interface {
	Liveness(containerID string) (healthy, known bool)
	Startup(containerID string) (started, known bool)
}

// ComputePodActions compares the desired pod with what the runtime holds for
// it and returns what must change. It follows the upstream kubelet's
// computePodActions: the sandbox first, then the init containers one at a
// time (sidecars kept running), then the app containers. A running
// container that failed its liveness or startup probe is killed and, as
// its restart policy says, started again. probes may be nil: no results,
// running means healthy and started. Back-off is not decided here: the
// executor checks it before it starts a container.
func ComputePodActions(pod *v1.Pod, st *container.PodStatus, probes Probes) PodActions {
	if needed, _ := st.NeedsNewSandbox(); needed {
		return newSandboxActions(pod, st)
	}

	sb := st.LatestSandbox()
	a := PodActions{SandboxID: sb.ID, Attempt: sb.Attempt, NextInitContainer: NoInit}
	a.EphemeralContainersToStart = ephemeralActions(pod, st)
	if initialized := initActions(pod, st, probes, &a); a.KillPod || !initialized {
		return settle(a, st)
	}
	appActions(pod, st, probes, &a)
	if st.IsRunning() && PodLevelDiffers(pod.Spec.Resources, st.ActuatedPodLevel) {
		// The pod cgroup follows the allocated pod-level resources
		// (upstream's UpdatePodLevelResources), with or without a
		// container to update.
		if a.Resize == nil {
			a.Resize = &Resize{}
		}
		a.Resize.Pod, a.Resize.PodLevel = true, true
	}
	return settle(a, st)
}

// newSandboxActions plans a pod whose sandbox is missing, dead or duplicated:
// everything left is killed and the pod starts over in a new sandbox, from
// its first init container, unless the pod has nothing left to run.
func newSandboxActions(pod *v1.Pod, st *container.PodStatus) PodActions {
	a := PodActions{CreateSandbox: true, NextInitContainer: NoInit}
	hasSandbox := st != nil && len(st.Sandboxes) > 0
	// Old sandboxes are stopped too: a dead one may still hold its network.
	a.KillPod = hasSandbox || len(st.RunningContainers()) > 0
	if hasSandbox {
		a.Attempt = st.LatestSandbox().Attempt + 1
	}

	// A pod that never restarts and has run containers already is not
	// brought back because its sandbox went away. (Without containers it
	// never really started, so making the sandbox is retried.)
	if pod.Spec.RestartPolicy == v1.RestartPolicyNever && hasSandbox && len(st.Containers) > 0 {
		a.CreateSandbox = false
		return settle(a, st)
	}

	// Every container ended for good (by its own restart policy or
	// rules): the pod is complete, its phase terminal. Upstream stops
	// syncing such a pod, so a lost sandbox brings nothing back.
	if complete(pod, st) {
		a.CreateSandbox = false
		return settle(a, st)
	}

	var start []int
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if container.RunsOnce(c, &pod.Spec) && succeeded(st.FindContainer(c.Name)) {
			continue
		}
		start = append(start, i)
	}
	// Nothing to run again and initialization was done before: the pod is
	// complete, so don't make a sandbox just to tear it down.
	if len(start) == 0 && container.AnyRegularContainerCreated(pod, st) {
		a.CreateSandbox = false
		return settle(a, st)
	}

	// A new sandbox starts from the beginning: init containers first.
	if len(pod.Spec.InitContainers) > 0 {
		a.NextInitContainer = 0
		return a
	}
	a.ContainersToStart = start
	return a
}

// appActions plans the app containers of an initialized pod in a ready
// sandbox. When none is left running and none is to start, the pod is done
// and is killed to release its sandbox (and stop its sidecars).
func appActions(pod *v1.Pod, st *container.PodStatus, probes Probes, a *PodActions) {
	keep := 0
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := st.FindContainer(c.Name)
		if cs == nil || cs.State != container.StateRunning {
			if !container.ShouldRestart(pod, c, st) {
				continue
			}
			a.ContainersToStart = append(a.ContainersToStart, i)
			if cs != nil && cs.State == container.StateUnknown {
				// It may still be running: kill it so two never run at once.
				a.kill(cs, ReasonUnknown, fmt.Sprintf("Container is in %q state, try killing it before restart", cs.State))
			}
			continue
		}
		var reason, message string
		// Replaced whatever the restart policy says when the spec asks for
		// it; after a failed probe only if the policy restarts it (the
		// container's own, else the pod's: rules need an exit code).
		restart := container.RestartsWhenKilled(c, &pod.Spec) && pod.DeletionTimestamp == nil
		switch {
		case !container.HashMatches(c, cs.Hash):
			reason, message, restart = ReasonSpecChanged, fmt.Sprintf("Container %s definition changed", c.Name), true
		case livenessFailed(probes, cs):
			reason, message = ReasonLivenessProbe, fmt.Sprintf("Container %s failed liveness probe", c.Name)
		case startupFailed(probes, cs):
			reason, message = ReasonStartupProbe, fmt.Sprintf("Container %s failed startup probe", c.Name)
		case !resizeAction(pod, c, st, cs, a):
			// Killed by resizeAction: its resizePolicy restarts it.
			a.ContainersToStart = append(a.ContainersToStart, i)
			continue
		default:
			keep++
			continue
		}
		if restart {
			message += ", will be restarted"
			a.ContainersToStart = append(a.ContainersToStart, i)
		}
		a.kill(cs, reason, message)
	}

	known := specNames(pod)
	for _, cs := range st.RunningContainers() {
		if !known[cs.Name] {
			a.kill(cs, ReasonNotInSpec, fmt.Sprintf("Container %s is not in the pod spec", cs.Name))
		}
	}

	if keep == 0 && len(a.ContainersToStart) == 0 {
		a.KillPod = true
		// Sidecars alone must not keep a finished pod alive.
		a.NextInitContainer = NoInit
	}
}

// ephemeralActions returns the ephemeral containers to start: each one the
// runtime holds no container for, in any sandbox. One that ran is never
// started again, whatever its end (upstream's rule), and a new sandbox
// does not bring it back.
func ephemeralActions(pod *v1.Pod, st *container.PodStatus) []int {
	var start []int
	for i := range pod.Spec.EphemeralContainers {
		if st.FindContainer(pod.Spec.EphemeralContainers[i].Name) == nil {
			start = append(start, i)
		}
	}
	return start
}

// settle drops a KillPod that would have nothing to stop: a pod that is done
// and already released plans no action, so the worker can rest. Kills of
// single containers, and ephemeral containers to start, are subsumed by
// KillPod: a pod being killed runs nothing new.
func settle(a PodActions, st *container.PodStatus) PodActions {
	if a.KillPod && !a.CreateSandbox && !st.IsRunning() {
		a.KillPod = false
	}
	if a.KillPod {
		a.ContainersToKill = nil
		a.EphemeralContainersToStart = nil
		a.Resize = nil
	}
	return a
}

func (a *PodActions) kill(cs *container.ContainerStatus, reason, message string) {
	if a.ContainersToKill == nil {
		a.ContainersToKill = make(map[string]KillInfo)
	}
	a.ContainersToKill[cs.ID] = KillInfo{Name: cs.Name, Reason: reason, Message: message}
}

// livenessFailed and startupFailed report whether the container failed the
// probe: its result is known and false. Without probes nothing fails.
func livenessFailed(probes Probes, cs *container.ContainerStatus) bool {
	if probes == nil {
		return false
	}
	healthy, known := probes.Liveness(cs.ID)
	return known && !healthy
}

func startupFailed(probes Probes, cs *container.ContainerStatus) bool {
	if probes == nil {
		return false
	}
	started, known := probes.Startup(cs.ID)
	return known && !started
}

// complete reports whether every app container has exited and none is to
// run again.
func complete(pod *v1.Pod, st *container.PodStatus) bool {
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := st.FindContainer(c.Name)
		if cs == nil || cs.State != container.StateExited || container.ShouldRestartAfterExit(c, &pod.Spec, cs.ExitCode) {
			return false
		}
	}
	return true
}

// succeeded reports whether a container exited with code 0.
func succeeded(cs *container.ContainerStatus) bool {
	return cs != nil && cs.State == container.StateExited && cs.ExitCode == 0
}

func specNames(pod *v1.Pod) map[string]bool {
	names := make(map[string]bool, len(pod.Spec.InitContainers)+len(pod.Spec.Containers)+len(pod.Spec.EphemeralContainers))
	for i := range pod.Spec.InitContainers {
		names[pod.Spec.InitContainers[i].Name] = true
	}
	for i := range pod.Spec.Containers {
		names[pod.Spec.Containers[i].Name] = true
	}
	for i := range pod.Spec.EphemeralContainers {
		names[pod.Spec.EphemeralContainers[i].Name] = true
	}
	return names
}
