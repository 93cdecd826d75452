package runtime

import (
	"context"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"

	"github.com/berth-dev/berth/internal/container"
)

// GetPodStatus reads everything the runtime holds for the pod with uid:
// its sandboxes and containers with full details (exit code, reason,
// termination message, log path). name and namespace label the result and
// are taken from the sandboxes when empty.
func (m *Manager) GetPodStatus(ctx context.Context, uid types.UID, name, namespace string) (*container.PodStatus, error) {
	rs, err := m.runtime(ctx)
	if err != nil {
		return nil, err
	}
	selector := map[string]string{container.LabelPodUID: string(uid)}
	st := &container.PodStatus{UID: uid, Name: name, Namespace: namespace}

	sandboxes, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list sandboxes of pod %s: %w", uid, m.wrap(err))
	}
	sortSandboxes(sandboxes)
	for _, sb := range sandboxes {
		resp, err := rs.PodSandboxStatus(ctx, sb.GetId(), false)
		if crierrors.IsNotFound(err) {
			continue // removed since the list: as if it had not been listed
		}
		if err != nil {
			return nil, fmt.Errorf("status of sandbox %s: %w", sb.GetId(), m.wrap(err))
		}
		if resp.GetStatus() == nil {
			return nil, fmt.Errorf("status of sandbox %s: runtime returned none", sb.GetId())
		}
		st.Sandboxes = append(st.Sandboxes, sandboxFromStatus(resp.GetStatus()))
		if st.Name == "" {
			st.Name = resp.GetStatus().GetMetadata().GetName()
			st.Namespace = resp.GetStatus().GetMetadata().GetNamespace()
		}
	}

	containers, err := rs.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list containers of pod %s: %w", uid, m.wrap(err))
	}
	for _, c := range containers {
		resp, err := rs.ContainerStatus(ctx, c.GetId(), false)
		if crierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("status of container %s: %w", c.GetId(), m.wrap(err))
		}
		s := resp.GetStatus()
		if s == nil {
			return nil, fmt.Errorf("status of container %s: runtime returned none", c.GetId())
		}
		cs := containerFromStatus(s, c.GetPodSandboxId())
		if m.opts.Resources != nil {
			if r, ok := m.opts.Resources.Actuated(uid, cs.Name); ok {
				cs.Actuated = &r
			}
		}
		if cs.State == container.StateRunning {
			cs.Resources = statusResources(s.GetResources(), cs.Actuated)
		}
		if cs.State == container.StateExited && cs.ExitCode != 0 && cs.Reason != reasonOOMKilled &&
			m.opts.OOM != nil && m.opts.OOM.OOMKilled(cs.ID) {
			// The kernel killed it for its memory limit; the runtime
			// has not told yet (containerd handles the exit and the OOM
			// event apart).
			cs.Reason = reasonOOMKilled
		}
		if s.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			if msg := terminationMessage(s); msg != "" {
				if cs.Message != "" {
					cs.Message += ": "
				}
				cs.Message += msg
			}
		}
		if st.Name == "" {
			st.Name = c.GetLabels()[container.LabelPodName]
			st.Namespace = c.GetLabels()[container.LabelPodNamespace]
		}
		st.Containers = append(st.Containers, cs)
	}
	sortContainers(st.Containers)
	st.Sort()
	if m.opts.Resources != nil {
		st.ActuatedPodLevel, _ = m.opts.Resources.ActuatedPodLevel(uid)
	}
	return st, nil
}

// ListPods groups every sandbox and container that carries a pod UID label
// by that UID, from two list calls. The result has state, identity, hash
// and restart count, but no exit details, IPs or log paths: it is for
// noticing change cheaply, every second.
func (m *Manager) ListPods(ctx context.Context) (map[types.UID]*container.PodStatus, error) {
	rs, err := m.runtime(ctx)
	if err != nil {
		return nil, err
	}
	sandboxes, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", m.wrap(err))
	}
	containers, err := rs.ListContainers(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", m.wrap(err))
	}
	pods := map[types.UID]*container.PodStatus{}
	pod := func(labels map[string]string) *container.PodStatus {
		uid := types.UID(labels[container.LabelPodUID])
		if uid == "" {
			return nil // not made by a kubelet: not berth's business
		}
		st, ok := pods[uid]
		if !ok {
			st = &container.PodStatus{UID: uid, Name: labels[container.LabelPodName], Namespace: labels[container.LabelPodNamespace]}
			pods[uid] = st
		}
		return st
	}
	sortSandboxes(sandboxes)
	for _, sb := range sandboxes {
		if st := pod(sb.GetLabels()); st != nil {
			st.Sandboxes = append(st.Sandboxes, sandboxFromList(sb))
		}
	}
	for _, c := range containers {
		if st := pod(c.GetLabels()); st != nil {
			st.Containers = append(st.Containers, containerFromList(c))
		}
	}
	for _, st := range pods {
		sortContainers(st.Containers)
		st.Sort()
	}
	return pods, nil
}

// sortSandboxes orders sandboxes newest first by attempt, then creation,
// then ID, so that equal timestamps still sort the same every time.
func sortSandboxes(s []*runtimeapi.PodSandbox) {
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.GetMetadata().GetAttempt() != b.GetMetadata().GetAttempt() {
			return a.GetMetadata().GetAttempt() > b.GetMetadata().GetAttempt()
		}
		if a.GetCreatedAt() != b.GetCreatedAt() {
			return a.GetCreatedAt() > b.GetCreatedAt()
		}
		return a.GetId() < b.GetId()
	})
}

// sortContainers pre-orders by ID so that PodStatus.Sort, which is stable
// and by creation time only, gives the same order every time.
func sortContainers(c []*container.ContainerStatus) {
	sort.Slice(c, func(i, j int) bool { return c[i].ID < c[j].ID })
}
