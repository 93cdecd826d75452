package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	crierrors "k8s.io/cri-api/pkg/errors"

	"github.com/berth-dev/berth/internal/container"
)

// gcPlan is what garbage collection removes from a pod.
type gcPlan struct {
	containers []*container.ContainerStatus
	sandboxes  []*container.SandboxStatus
}

// GCPolicy is upstream's container garbage collection policy, from its
// deprecated flags.
type GCPolicy struct {
	// MinAge: a dead container created more recently stays
	// (--minimum-container-ttl-duration, default 0).
	MinAge time.Duration
	// MaxPerPodContainer: how many exited instances of each container stay
	// (--maximum-dead-containers-per-container, default 1); negative for
	// all.
	MaxPerPodContainer int
}

// DefaultGCPolicy is upstream's default policy.
func DefaultGCPolicy() GCPolicy { return GCPolicy{MaxPerPodContainer: 1} }

// planGC picks what a pod no longer needs. Per container name it keeps
// every running instance, the newest instance whatever its state, those
// created less than MinAge before now, and the newest MaxPerPodContainer
// exited ones (the status shows the newest as lastState and
// `logs --previous` reads its log); older instances go. Sandboxes go when
// they are not ready, not the newest, and hold no container that stays:
// removing a sandbox removes its containers too.
func planGC(st *container.PodStatus, policy GCPolicy, now time.Time) gcPlan {
	var plan gcPlan
	kept := map[string]bool{} // sandbox IDs with a kept container
	seen := map[string]bool{} // names whose newest instance was seen
	exitedKept := map[string]int{}
	for _, cs := range st.Containers { // newest first
		keep := false
		switch {
		case cs.State == container.StateRunning:
			keep = true
		case !seen[cs.Name]:
			keep = true
		case now.Sub(cs.CreatedAt) < policy.MinAge:
			keep = true
		case cs.State == container.StateExited && (policy.MaxPerPodContainer < 0 || exitedKept[cs.Name] < policy.MaxPerPodContainer):
			keep = true
		}
		if keep && cs.State == container.StateExited {
			exitedKept[cs.Name]++
		}
		seen[cs.Name] = true
		if keep {
			kept[cs.SandboxID] = true
			continue
		}
		plan.containers = append(plan.containers, cs)
	}
	for i, sb := range st.Sandboxes {
		if i == 0 || sb.State == container.SandboxReady || kept[sb.ID] {
			continue
		}
		plan.sandboxes = append(plan.sandboxes, sb)
	}
	return plan
}

// GarbageCollect removes what the pod no longer needs (see planGC). st
// should come from GetPodStatus, which has the log paths. pod may be nil.
func (m *Manager) GarbageCollect(ctx context.Context, pod *v1.Pod, st *container.PodStatus) error {
	rs, err := m.runtime(ctx)
	if err != nil {
		return err
	}
	id := podIdentity{name: st.Name, namespace: st.Namespace, uid: st.UID}
	if pod != nil {
		id = identityOf(pod)
	}
	plan := planGC(st, m.gcPolicy, m.clock.Now())
	var errs []error
	for _, cs := range plan.containers {
		if cs.State == container.StateUnknown {
			// It might still run: stop it before removal.
			if err := m.killContainer(ctx, rs, killRequest{
				id: id, containerID: cs.ID, name: cs.Name,
				message: "Container is in unknown state, try killing it before removal",
			}); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := m.removeContainer(ctx, rs, st, cs); err != nil {
			errs = append(errs, err)
		}
	}
	for _, sb := range plan.sandboxes {
		// Normally stopped already; stop again in case it was not.
		if err := rs.StopPodSandbox(ctx, sb.ID); err != nil && !crierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", sb.ID, m.wrap(err)))
			continue
		}
		if err := rs.RemovePodSandbox(ctx, sb.ID); err != nil && !crierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", sb.ID, m.wrap(err)))
		}
	}
	// Back-off entries of containers long gone go too.
	m.crashBO.GC()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("garbage collect pod %s: %w", podDescOf(id), err)
	}
	return nil
}
