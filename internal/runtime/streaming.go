package runtime

import (
	"context"
	"encoding/json"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
)

// The calls below pass straight through to the CRI runtime service for the
// kubelet API (exec, attach, port-forward), log rotation and the PLEG's
// exit watch (a container's PID, whether its exit is recorded). Errors keep
// their gRPC codes so that callers can tell NotFound apart.

// Exec asks the runtime for a streaming URL to exec in a container.
func (m *Manager) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	rs, err := m.runtime(ctx)
	if err != nil {
		return nil, err
	}
	return rs.Exec(ctx, req)
}

// Attach asks the runtime for a streaming URL to attach to a container.
func (m *Manager) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	rs, err := m.runtime(ctx)
	if err != nil {
		return nil, err
	}
	return rs.Attach(ctx, req)
}

// PortForward asks the runtime for a streaming URL to forward ports of a sandbox.
func (m *Manager) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	rs, err := m.runtime(ctx)
	if err != nil {
		return nil, err
	}
	return rs.PortForward(ctx, req)
}

// ListContainers lists the runtime's containers matching filter.
func (m *Manager) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	rs, err := m.runtime(ctx)
	if err != nil {
		return nil, err
	}
	return rs.ListContainers(ctx, filter)
}

// ContainerStatus returns one container's status from the runtime.
func (m *Manager) ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	rs, err := m.runtime(ctx)
	if err != nil {
		return nil, err
	}
	return rs.ContainerStatus(ctx, containerID, verbose)
}

// ReopenContainerLog makes the runtime reopen a container's log file after
// it was rotated.
func (m *Manager) ReopenContainerLog(ctx context.Context, containerID string) error {
	rs, err := m.runtime(ctx)
	if err != nil {
		return err
	}
	return rs.ReopenContainerLog(ctx, containerID)
}

// ContainerExited reports whether the runtime shows the container exited,
// or no longer has it.
func (m *Manager) ContainerExited(ctx context.Context, containerID string) (bool, error) {
	st, err := m.ContainerStatus(ctx, containerID, false)
	if crierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_EXITED, nil
}

// ContainerPID returns the host PID of a running container's main process,
// from the runtime's verbose status (containerd and CRI-O both report it
// in info["info"] as "pid").
func (m *Manager) ContainerPID(ctx context.Context, containerID string) (int, error) {
	st, err := m.ContainerStatus(ctx, containerID, true)
	if err != nil {
		return 0, err
	}
	var info struct {
		PID int `json:"pid"`
	}
	raw, ok := st.GetInfo()["info"]
	if !ok {
		return 0, fmt.Errorf("container %s: runtime reports no process info", containerID)
	}
	if err := json.Unmarshal([]byte(raw), &info); err != nil {
		return 0, fmt.Errorf("container %s: parse process info: %w", containerID, err)
	}
	if info.PID <= 0 {
		return 0, fmt.Errorf("container %s: no pid in process info", containerID)
	}
	return info.PID, nil
}
