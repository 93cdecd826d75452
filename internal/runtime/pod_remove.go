package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/container"
)

// RemovePod removes every container and sandbox of a killed pod, its files
// under RootDir/pods/<uid> and its logs. It lists the pod afresh rather than
// trusting st, so that nothing created since st was read is left behind;
// st names the pod. A container still running is stopped first.
func (m *Manager) RemovePod(ctx context.Context, st *container.PodStatus) error {
	rs, err := m.runtime(ctx)
	if err != nil {
		return err
	}
	selector := map[string]string{container.LabelPodUID: string(st.UID)}
	name, namespace := st.Name, st.Namespace
	var errs []error

	containers, err := rs.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list containers of pod %s: %w", st.UID, m.wrap(err))
	}
	for _, c := range containers {
		if name == "" {
			name, namespace = c.GetLabels()[container.LabelPodName], c.GetLabels()[container.LabelPodNamespace]
		}
		if c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING || c.GetState() == runtimeapi.ContainerState_CONTAINER_UNKNOWN {
			if err := rs.StopContainer(ctx, c.GetId(), minGracePeriod); err != nil && !crierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("stop container %s: %w", c.GetId(), m.wrap(err)))
				continue
			}
		}
		// The log goes with the pod's log directory below.
		if err := rs.RemoveContainer(ctx, c.GetId()); err != nil && !crierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.GetId(), m.wrap(err)))
		}
	}

	sandboxes, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list sandboxes of pod %s: %w", st.UID, m.wrap(err))
	}
	for _, sb := range sandboxes {
		if name == "" {
			name, namespace = sb.GetMetadata().GetName(), sb.GetMetadata().GetNamespace()
		}
		if err := rs.StopPodSandbox(ctx, sb.GetId()); err != nil && !crierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", sb.GetId(), m.wrap(err)))
			continue
		}
		if err := rs.RemovePodSandbox(ctx, sb.GetId()); err != nil && !crierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", sb.GetId(), m.wrap(err)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		// Keep the files: the next attempt still needs to find the pod.
		return fmt.Errorf("remove pod %s: %w", st.UID, err)
	}

	// The names come from the runtime's labels: each must be one path
	// segment, so that the removal stays in the logs and root dirs.
	if err := errors.Join(container.CheckPathSegment("pod UID", string(st.UID)),
		checkOptionalSegment("pod name", name), checkOptionalSegment("pod namespace", namespace)); err != nil {
		return fmt.Errorf("remove pod %s: not removing its files: %w", st.UID, err)
	}
	logDirs := []string{podLogsDir(m.node.podLogsDir, namespace, name, st.UID)}
	if name == "" {
		// Nothing left to name the pod: find its logs by UID.
		logDirs, _ = filepath.Glob(filepath.Join(m.node.podLogsDir, "*_"+string(st.UID)))
	}
	for _, dir := range logDirs {
		if filepath.Dir(dir) != filepath.Clean(m.node.podLogsDir) {
			errs = append(errs, fmt.Errorf("not removing pod logs %s: outside %s", dir, m.node.podLogsDir))
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove pod logs: %w", err))
		}
	}
	// Its containers are gone: the pod's user namespace IDs are free (and
	// their record leaves the pod's directory).
	if m.opts.UserNamespaces != nil {
		m.opts.UserNamespaces.Release(st.UID)
	}
	if err := m.removePodDir(st); err != nil {
		errs = append(errs, err)
	}
	// runc removes the container cgroups but not their parent, so without
	// this every pod would leave directories behind. An error is not
	// fatal: a leftover empty cgroup costs nothing but a directory.
	if m.opts.PodCgroups != nil {
		if err := m.opts.PodCgroups.RemovePod(st.UID); err != nil {
			klog.FromContext(ctx).V(2).Info("Could not remove the pod's cgroup; it is left empty", "podUID", st.UID, "err", err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove pod %s: %w", st.UID, err)
	}
	return nil
}

// removePodDir removes the files the runtime put in the pod's directory,
// then the directory if nothing else is left in it. It removes only what it
// knows, not the whole tree: volumes are mounted under it, and a recursive
// delete must never walk into a mount. The volume manager removes the
// directory when it is the last to leave.
func (m *Manager) removePodDir(st *container.PodStatus) error {
	dir, err := container.PodDir(m.node.rootDir, st.UID)
	if err != nil {
		return fmt.Errorf("remove pod directory: %w", err)
	}
	for _, p := range []string{filepath.Join(dir, "etc-hosts"), filepath.Join(dir, "containers")} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	err = os.Remove(dir)
	if err == nil || os.IsNotExist(err) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return nil
	}
	return fmt.Errorf("remove pod directory: %w", err)
}

// checkOptionalSegment is container.CheckPathSegment for a name that may be
// unknown ("").
func checkOptionalSegment(what, s string) error {
	if s == "" {
		return nil
	}
	return container.CheckPathSegment(what, s)
}
