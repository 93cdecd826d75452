package runtime

import (
	"context"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ExecSync runs cmd in a container and waits for it, for probes and the
// /run endpoint. A non-zero exit is reported as an error by the CRI client
// (k8s.io/utils/exec's CodeExitError), which callers unwrap.
func (m *Manager) ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, err error) {
	rs, err := m.runtime(ctx)
	if err != nil {
		return nil, nil, err
	}
	return rs.ExecSync(ctx, containerID, cmd, timeout)
}

// ListContainerStats returns the runtime's stats of every container.
func (m *Manager) ListContainerStats(ctx context.Context) ([]*runtimeapi.ContainerStats, error) {
	rs, err := m.runtime(ctx)
	if err != nil {
		return nil, err
	}
	s, err := rs.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{})
	if err != nil {
		return nil, fmt.Errorf("list container stats: %w", m.wrap(err))
	}
	return s, nil
}

// ImageFsInfo returns the usage of the runtime's image filesystem.
func (m *Manager) ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	_, is, err := m.services(ctx)
	if err != nil {
		return nil, err
	}
	r, err := is.ImageFsInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("image fs info: %w", m.wrap(err))
	}
	return r, nil
}
