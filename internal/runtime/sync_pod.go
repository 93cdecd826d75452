package runtime

import (
	"context"
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
)

// SyncPod carries out one planning step for a pod, in the order the plan
// prescribes:
//
//  1. KillPod: stop every container and the sandbox; unless a new sandbox
//     follows, that is all. Else kill ContainersToKill, one by one.
//  2. CreateSandbox: create the pod's cgroup if it is not there, then run
//     a new sandbox (after removing the old sandbox's init containers,
//     which must run again in it).
//  3. Start EphemeralContainersToStart (first, as upstream: a debugger
//     reaches a pod whose init container cannot start), then
//     NextInitContainer if set, then every one of ContainersToStart (the
//     planner only asks for both once the pod is initialised, and then the
//     init container is a sidecar being restarted).
//
// Between 1 and 2, Resize updates running containers in place (resize.go).
//
// st is the runtime state the plan was computed from. A container that
// could not start is in Waiting with the upstream reason; RequeueAfter is
// the earliest time a retry makes sense (a back-off expiring). Err is set
// when a step failed such that nothing after it could be done; the caller
// should then retry with its own back-off.
func (m *Manager) SyncPod(ctx context.Context, pod *v1.Pod, st *container.PodStatus, a plan.PodActions) container.SyncResult {
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod), "podUID", pod.UID)
	ctx = klog.NewContext(ctx, logger)
	res := container.SyncResult{Waiting: map[string]container.Waiting{}}
	if st == nil {
		st = &container.PodStatus{UID: pod.UID, Name: pod.Name, Namespace: pod.Namespace}
	}
	id := identityOf(pod)
	rs, is, err := m.services(ctx)
	if err != nil {
		res.Err = err
		return res
	}

	// Step 1: kill.
	if a.CreateSandbox && len(st.Sandboxes) > 0 {
		m.podEvent(id, v1.EventTypeNormal, eventSandboxChanged, "Pod sandbox changed, it will be killed and re-created.")
	}
	if a.KillPod {
		if err := m.KillPod(ctx, pod, st, nil); err != nil {
			res.Err = err
			return res
		}
		if !a.CreateSandbox {
			return res
		}
		m.purgeInitContainers(ctx, pod, st)
	} else {
		for _, cid := range sortedKeys(a.ContainersToKill) {
			info := a.ContainersToKill[cid]
			var sb *container.SandboxStatus
			if cs := findContainerByID(st, cid); cs != nil {
				sb = findSandbox(st, cs.SandboxID)
			}
			if err := m.killContainer(ctx, rs, killRequest{
				id: id, pod: pod, containerID: cid, name: info.Name,
				message: info.Message, reason: info.Reason, sandbox: sb,
			}); err != nil {
				res.Err = err
				return res
			}
		}
	}
	if a.Resize != nil && !a.CreateSandbox {
		if err := m.resizePod(ctx, rs, pod, a.Resize); err != nil {
			// Later syncs retry what is left; the error is the
			// PodResizeInProgress condition's message.
			res.ResizeErr = err.Error()
		}
	}
	if a.NextInitContainer == plan.NoInit && len(a.ContainersToStart) == 0 && len(a.EphemeralContainersToStart) == 0 && !a.CreateSandbox {
		return res
	}

	// Step 2: the sandbox to start containers in.
	target := startTarget{rs: rs, is: is, sandboxID: a.SandboxID}
	attempt := a.Attempt
	if !a.CreateSandbox {
		sb := findSandbox(st, a.SandboxID)
		if sb == nil {
			res.Err = fmt.Errorf("sandbox %q of pod %s not found", a.SandboxID, podDesc(pod))
			return res
		}
		attempt, target.podIPs = sb.Attempt, sb.IPs
	}
	cfg, handler, err := m.makeSandboxConfig(ctx, rs, id, pod, attempt)
	if err != nil {
		if a.CreateSandbox {
			m.podEvent(id, v1.EventTypeWarning, eventFailedCreatePodSandBox, fmt.Sprintf("Failed to create pod sandbox: %v", err))
		}
		res.Err = fmt.Errorf("sandbox config for pod %s: %w", podDesc(pod), err)
		return res
	}
	target.sandboxConfig, target.handler = cfg, handler
	if a.CreateSandbox && m.opts.PodCgroups != nil {
		// The pod's cgroup, with its limits, is in place before anything
		// runs in it (upstream's pod container manager, EnsureExists).
		if err := m.opts.PodCgroups.EnsurePod(ctx, pod); err != nil {
			m.podEvent(id, v1.EventTypeWarning, eventFailedToCreatePodContainer, fmt.Sprintf("unable to ensure pod container exists: %v", err))
			res.Err = fmt.Errorf("failed to ensure that the pod: %v cgroups exist and are correctly applied: %w", pod.UID, err)
			return res
		}
		m.recordPodLevel(pod, false)
	}
	if a.CreateSandbox {
		sandboxID, ips, err := m.runSandbox(ctx, rs, pod, cfg, handler)
		if err != nil {
			if sandboxID != "" {
				m.podEvent(id, v1.EventTypeWarning, eventFailedPodSandBoxStatus, fmt.Sprintf("Unable to get pod sandbox status: %v", err))
			} else {
				m.podEvent(id, v1.EventTypeWarning, eventFailedCreatePodSandBox, fmt.Sprintf("Failed to create pod sandbox: %v", message(err)))
			}
			res.Err = fmt.Errorf("create sandbox for pod %s: %w", podDesc(pod), err)
			return res
		}
		logger.V(2).Info("Created pod sandbox", "sandboxID", sandboxID, "attempt", attempt, "ips", ips)
		target.sandboxID, target.podIPs = sandboxID, ips
	}

	// Step 3: start containers.
	start := func(spec startSpec) {
		w, retry := m.startContainer(ctx, target, id, pod, spec, st)
		if w == nil {
			return
		}
		res.Waiting[spec.c.Name] = *w
		if retry > 0 && (res.RequeueAfter == 0 || retry < res.RequeueAfter) {
			res.RequeueAfter = retry
		}
	}
	for _, i := range a.EphemeralContainersToStart {
		if i < 0 || i >= len(pod.Spec.EphemeralContainers) {
			res.Err = fmt.Errorf("ephemeral container index %d out of range", i)
			return res
		}
		start(ephemeralStartSpec(&pod.Spec.EphemeralContainers[i]))
	}
	if i := a.NextInitContainer; i != plan.NoInit {
		if i < 0 || i >= len(pod.Spec.InitContainers) {
			res.Err = fmt.Errorf("init container index %d out of range", i)
			return res
		}
		m.pruneInitContainers(ctx, pod, st)
		start(startSpec{c: &pod.Spec.InitContainers[i]})
	}
	for _, i := range a.ContainersToStart {
		if i < 0 || i >= len(pod.Spec.Containers) {
			res.Err = fmt.Errorf("container index %d out of range", i)
			return res
		}
		start(startSpec{c: &pod.Spec.Containers[i]})
	}
	return res
}

func findSandbox(st *container.PodStatus, id string) *container.SandboxStatus {
	for _, sb := range st.Sandboxes {
		if sb.ID == id {
			return sb
		}
	}
	return nil
}

func findContainerByID(st *container.PodStatus, id string) *container.ContainerStatus {
	for _, cs := range st.Containers {
		if cs.ID == id {
			return cs
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// purgeInitContainers removes every init container of the pod before its
// sandbox is re-created: in the new sandbox they must all run again, and
// their old instances would tell the planner they had.
func (m *Manager) purgeInitContainers(ctx context.Context, pod *v1.Pod, st *container.PodStatus) {
	m.removeInitContainers(ctx, pod, st, 0)
}

// pruneInitContainers keeps only the newest exited instance of each init
// container before the next one starts, so they do not pile up.
func (m *Manager) pruneInitContainers(ctx context.Context, pod *v1.Pod, st *container.PodStatus) {
	m.removeInitContainers(ctx, pod, st, 1)
}

// removeInitContainers removes the instances of each init container beyond
// the newest keep exited ones; with keep 0 it removes them all (the pod was
// just killed). Failures are only logged: garbage collection tries again.
func (m *Manager) removeInitContainers(ctx context.Context, pod *v1.Pod, st *container.PodStatus, keep int) {
	logger := klog.FromContext(ctx)
	rs, err := m.runtime(ctx)
	if err != nil {
		return
	}
	for _, ic := range pod.Spec.InitContainers {
		n := 0
		for _, cs := range st.ContainersNamed(ic.Name) {
			if keep > 0 && cs.State != container.StateExited && cs.State != container.StateUnknown {
				continue
			}
			n++
			if n <= keep {
				continue
			}
			if err := m.removeContainer(ctx, rs, st, cs); err != nil {
				logger.V(2).Info("Could not remove init container", "container", cs.Name, "containerID", cs.ID, "err", err)
			}
		}
	}
}
