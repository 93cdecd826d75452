package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	crierrors "k8s.io/cri-api/pkg/errors"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/container"
)

// minGracePeriod is the least time a container gets to stop: upstream
// never sends SIGKILL straight away.
const minGracePeriod = 2

// Kill reasons (plan.KillInfo.Reason) that pick the probe's own grace
// period, as upstream's do.
const (
	KillReasonLivenessProbe = "LivenessProbe"
	KillReasonStartupProbe  = "StartupProbe"
)

// killGracePeriod is how long a container gets to stop: the override if
// any, else the pod's deletion grace period, else the failed probe's or the
// pod's termination grace period. For an orphan (pod == nil) the values
// berth stored on the container are used. Never less than minGracePeriod.
func killGracePeriod(pod *v1.Pod, spec *v1.Container, reason string, stored annotatedInfo, override *int64) int64 {
	g := int64(minGracePeriod)
	switch {
	case override != nil:
		g = *override
	case pod == nil && stored.podDeletionGrace != nil:
		g = *stored.podDeletionGrace
	case pod == nil && stored.podTerminationGrace != nil:
		g = *stored.podTerminationGrace
	case pod == nil:
	case pod.DeletionGracePeriodSeconds != nil:
		g = *pod.DeletionGracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		g = *pod.Spec.TerminationGracePeriodSeconds
		if spec != nil {
			var probe *v1.Probe
			switch reason {
			case KillReasonLivenessProbe:
				probe = spec.LivenessProbe
			case KillReasonStartupProbe:
				probe = spec.StartupProbe
			}
			if probe != nil && probe.TerminationGracePeriodSeconds != nil {
				g = *probe.TerminationGracePeriodSeconds
			}
		}
	}
	return max(g, minGracePeriod)
}

// killContainer stops one container within its grace period. pod is nil
// for an orphan: its grace period is then read off the container.
func (m *Manager) killContainer(ctx context.Context, rs internalapi.RuntimeService, id podIdentity, pod *v1.Pod, containerID, name, message, reason string, override *int64) error {
	var stored annotatedInfo
	if pod == nil && override == nil {
		resp, err := rs.ContainerStatus(ctx, containerID, false)
		if crierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("status of container %s: %w", name, m.wrap(err))
		}
		stored = parseAnnotations(resp.GetStatus().GetAnnotations())
	}
	grace := killGracePeriod(pod, findContainer(pod, name), reason, stored, override)
	if message == "" {
		message = "Stopping container " + name
	}
	m.containerEvent(id, name, containerID, v1.EventTypeNormal, eventKilling, message)
	klog.FromContext(ctx).V(2).Info("Killing container with a grace period", "pod", klog.KRef(id.namespace, id.name),
		"podUID", id.uid, "container", name, "containerID", containerID, "gracePeriod", grace)
	if err := rs.StopContainer(ctx, containerID, grace); err != nil && !crierrors.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", name, m.wrap(err))
	}
	return nil
}

// KillPod stops every running container of the pod at once, each within
// its grace period, then stops every sandbox. pod is nil for an orphan
// whose spec berth no longer has; gracePeriodOverride, when set, replaces
// every grace period. It returns all the failures.
func (m *Manager) KillPod(ctx context.Context, pod *v1.Pod, st *container.PodStatus, gracePeriodOverride *int64) error {
	rs, err := m.runtime(ctx)
	if err != nil {
		return err
	}
	id := podIdentity{name: st.Name, namespace: st.Namespace, uid: st.UID}
	if pod != nil {
		id = identityOf(pod)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, cs := range st.Containers {
		if cs.State != container.StateRunning && cs.State != container.StateUnknown {
			continue
		}
		wg.Go(func() {
			if err := m.killContainer(ctx, rs, id, pod, cs.ID, cs.Name, "", "", gracePeriodOverride); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Stopping the sandbox also ends any container that would not stop.
	for _, sb := range st.Sandboxes {
		if err := rs.StopPodSandbox(ctx, sb.ID); err != nil && !crierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", sb.ID, m.wrap(err)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kill pod %s: %w", podDescOf(id), err)
	}
	return nil
}

func podDescOf(id podIdentity) string {
	return fmt.Sprintf("%s_%s(%s)", id.name, id.namespace, id.uid)
}
