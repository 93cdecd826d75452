package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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

// killGracePeriod is how long a container has to stop, preStop hook
// included: the override if any, else the pod's deletion grace period, else
// the failed probe's or the pod's termination grace period. For an orphan
// (pod == nil) the values berth stored on the container are used. It may be
// 0; the stop itself always gets at least minGracePeriod.
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
	return g
}

// killRequest is one container to kill.
type killRequest struct {
	id                  podIdentity
	pod                 *v1.Pod // nil for an orphan: its spec is read off the container
	containerID, name   string
	message, reason     string // for the Killing event; reason may pick a probe's grace period
	gracePeriodOverride *int64
	// order holds a sidecar back until the containers it serves stopped.
	order *terminationOrdering
	// start is when the grace period began (zero: now); several kills of
	// one pod share it.
	start time.Time
	// sandbox tells httpGet preStop hooks where the pod is.
	sandbox *container.SandboxStatus
}

// killContainer stops one container as upstream does: the Killing event,
// the preStop hook within the grace period, for a sidecar the wait for its
// turn, then StopContainer with what remains of the grace period (at least
// minGracePeriod).
func (m *Manager) killContainer(ctx context.Context, rs internalapi.RuntimeService, k killRequest) error {
	logger := klog.FromContext(ctx)
	if k.start.IsZero() {
		k.start = m.clock.Now()
	}
	pod, spec := k.pod, container.FindContainer(k.pod, k.name)
	var stored annotatedInfo
	if pod == nil {
		resp, err := rs.ContainerStatus(ctx, k.containerID, false)
		if crierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("status of container %s: %w", k.name, m.wrap(err))
		}
		stored = parseAnnotations(resp.GetStatus().GetAnnotations())
		spec = stored.containerSpec(k.name)
		// Only what hooks and events need of the pod.
		pod = &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: k.id.name, Namespace: k.id.namespace, UID: k.id.uid}}
	}
	grace := killGracePeriod(k.pod, spec, k.reason, stored, k.gracePeriodOverride)
	deadline := k.start.Add(time.Duration(grace) * time.Second)
	message := k.message
	if message == "" {
		message = "Stopping container " + k.name
	}
	m.containerEvent(k.id, k.name, k.containerID, v1.EventTypeNormal, eventKilling, message)

	if spec != nil && spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil && grace > 0 {
		m.runPreStop(ctx, rs, k, pod, spec, deadline)
	}
	if k.order != nil {
		k.order.waitForTurn(ctx, m.clock, k.name, deadline)
	}
	// Whole seconds left, as upstream counts them; never less than the minimum.
	remaining := max(grace-int64(m.clock.Since(k.start)/time.Second), minGracePeriod)
	logger.V(2).Info("Killing container with a grace period", "pod", klog.KRef(k.id.namespace, k.id.name),
		"podUID", k.id.uid, "container", k.name, "containerID", k.containerID, "gracePeriod", remaining)
	if m.opts.OnContainerStopping != nil {
		m.opts.OnContainerStopping(k.containerID)
	}
	if err := rs.StopContainer(ctx, k.containerID, remaining); err != nil && !crierrors.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", k.name, m.wrap(err))
	}
	if k.order != nil {
		k.order.containerTerminated(k.name)
	}
	return nil
}

// runPreStop runs the container's preStop hook until it ends or the
// deadline passes, whichever is first; an exec hook gets the time left as
// its timeout. A failure is an event (without the hook's output, which may
// hold secrets): the container is stopped all the same.
func (m *Manager) runPreStop(ctx context.Context, rs internalapi.RuntimeService, k killRequest, pod *v1.Pod, spec *v1.Container, deadline time.Time) {
	logger := klog.FromContext(ctx).WithValues("pod", klog.KRef(k.id.namespace, k.id.name), "podUID", k.id.uid, "container", k.name, "containerID", k.containerID)
	left := deadline.Sub(m.clock.Now())
	if left <= 0 {
		return
	}
	// The timer is set before the hook starts, so a test's fake clock finds it.
	timer := m.clock.NewTimer(left)
	defer timer.Stop()
	hookCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := m.runHook(hookCtx, hookCall{
			id: k.id, pod: pod, spec: spec, containerID: k.containerID,
			handler: spec.Lifecycle.PreStop, exec: rs, timeout: left,
			host: m.hookHost(rs, pod.UID, k.sandbox, pod.Spec.HostNetwork),
		})
		if err != nil && hookCtx.Err() == nil {
			logger.Info("PreStop hook failed", "err", err)
			m.containerEvent(k.id, k.name, k.containerID, v1.EventTypeWarning, eventFailedPreStopHook, "PreStopHook failed")
		}
	}()
	select {
	case <-done:
		logger.V(3).Info("PreStop hook completed")
	case <-timer.C():
		logger.V(2).Info("PreStop hook not completed in grace period")
	case <-ctx.Done():
	}
	cancel()
	<-done
}

// hookHost returns where httpGet hooks without a host go: the pod's IP, as
// the sandbox reports it (looked up when not known), or for a host-network
// pod the node's.
func (m *Manager) hookHost(rs internalapi.RuntimeService, uid types.UID, sb *container.SandboxStatus, hostNetwork bool) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		var ips []string
		if sb != nil {
			ips, hostNetwork = sb.IPs, hostNetwork || sb.HostNetwork
		}
		if len(ips) == 0 && !hostNetwork {
			found, err := m.readySandbox(ctx, rs, uid)
			if err != nil {
				return "", fmt.Errorf("unable to get pod status, event handlers may be invalid: %w", err)
			}
			if found != nil {
				ips, hostNetwork = found.IPs, found.HostNetwork
			}
		}
		switch {
		case len(ips) > 0:
			return ips[0], nil
		case hostNetwork && len(m.node.nodeIPs) > 0:
			return m.node.nodeIPs[0], nil
		}
		return "", errors.New("failed to find networking container")
	}
}

// readySandbox returns the newest ready sandbox of the pod, or nil.
func (m *Manager) readySandbox(ctx context.Context, rs internalapi.RuntimeService, uid types.UID) (*container.SandboxStatus, error) {
	sandboxes, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{container.LabelPodUID: string(uid)},
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
	})
	if err != nil {
		return nil, m.wrap(err)
	}
	sortSandboxes(sandboxes)
	for _, sb := range sandboxes {
		resp, err := rs.PodSandboxStatus(ctx, sb.GetId(), false)
		if err != nil || resp.GetStatus() == nil {
			continue
		}
		return sandboxFromStatus(resp.GetStatus()), nil
	}
	return nil, nil
}

// KillPod stops every running container of the pod, each within its grace
// period, then stops every sandbox. The containers stop at once, except
// that sidecars wait for the app containers and then stop in reverse order
// (upstream's termination ordering). pod is nil for an orphan whose spec
// berth no longer has; gracePeriodOverride, when set, replaces every grace
// period. It returns all the failures.
func (m *Manager) KillPod(ctx context.Context, pod *v1.Pod, st *container.PodStatus, gracePeriodOverride *int64) error {
	rs, err := m.runtime(ctx)
	if err != nil {
		return err
	}
	id := podIdentity{name: st.Name, namespace: st.Namespace, uid: st.UID}
	if pod != nil {
		id = identityOf(pod)
	}
	var running []*container.ContainerStatus
	var names []string
	for _, cs := range st.Containers {
		if cs.State == container.StateRunning || cs.State == container.StateUnknown {
			running = append(running, cs)
			names = append(names, cs.Name)
		}
	}
	var order *terminationOrdering
	if pod != nil && hasSidecars(pod) {
		order = newTerminationOrdering(pod, names)
	}
	var (
		mu    sync.Mutex
		errs  []error
		wg    sync.WaitGroup
		start = m.clock.Now()
	)
	for _, cs := range running {
		wg.Go(func() {
			err := m.killContainer(ctx, rs, killRequest{
				id: id, pod: pod, containerID: cs.ID, name: cs.Name,
				gracePeriodOverride: gracePeriodOverride, order: order, start: start,
				sandbox: findSandbox(st, cs.SandboxID),
			})
			if err != nil {
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
