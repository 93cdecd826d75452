package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	internalapi "k8s.io/cri-api/pkg/apis"
	crierrors "k8s.io/cri-api/pkg/errors"

	"github.com/berth-dev/berth/internal/container"
)

// removeContainer removes a stopped container and its log (rotated parts
// included). The log goes first: should that fail, the container stays and
// a later pass tries both again, so no log is left without its container.
func (m *Manager) removeContainer(ctx context.Context, rs internalapi.RuntimeService, st *container.PodStatus, cs *container.ContainerStatus) error {
	logPath := cs.LogPath
	if logPath == "" {
		logPath = filepath.Join(podLogsDir(m.node.podLogsDir, st.Namespace, st.Name, st.UID), containerLogPath(cs.Name, cs.RestartCount))
	}
	rotated, _ := filepath.Glob(logPath + ".*")
	for _, p := range append(rotated, logPath) {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove log of container %s: %w", cs.Name, err)
		}
	}
	if err := rs.RemoveContainer(ctx, cs.ID); err != nil && !crierrors.IsNotFound(err) {
		return fmt.Errorf("remove container %s (%s): %w", cs.Name, cs.ID, m.wrap(err))
	}
	return nil
}
