package runtime

import (
	"context"
	"time"
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
