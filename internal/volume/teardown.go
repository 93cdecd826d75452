package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/container"
)

// TearDown removes a pod's volumes once its containers are gone: it
// unmounts every mount under the pod's directory (tmpfs volumes, and any
// bind mount made for it), then removes the volumes, plugins and
// volume-subpaths directories, and the pod directory itself if nothing
// else is left in it. Data of hostPath and PersistentVolume volumes is not
// touched. Idempotent; on error the caller retries.
func (m *Manager) TearDown(ctx context.Context, podUID types.UID) error {
	m.mu.Lock()
	ps := m.pods[podUID]
	m.mu.Unlock()
	if ps != nil {
		ps.mu.Lock()
		ps.gone = true
		pod := ps.pod
		ps.volumes = make(map[string]*volumeState)
		m.reschedule(ps)
		ps.mu.Unlock()
		if m.objects != nil && pod != nil {
			m.objects.UnregisterPod(pod)
		}
	}

	dir, err := container.PodDir(m.rootDir, podUID)
	if err != nil {
		return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
	}
	// CSI volumes first, through their drivers: unmounting them here
	// would leave the driver's state (and a staged volume) behind.
	if m.csi != nil {
		if err := m.csi.TearDownPod(ctx, podUID); err != nil {
			return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
		}
	}
	if err := unmountAll(dir); err != nil {
		return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
	}
	for _, sub := range []string{"volumes", "plugins", "volume-subpaths"} {
		if err := removeUnmounted(filepath.Join(dir, sub)); err != nil {
			return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
		}
	}
	// The runtime removes its own files and then the directory; whoever
	// comes last removes it.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
	}

	// Forget the pod unless a SetUp revived it meanwhile. isGone takes
	// ps.mu, so it is asked before Manager.mu (the lock order).
	if ps == nil || ps.isGone() {
		m.mu.Lock()
		if m.pods[podUID] == ps {
			delete(m.pods, podUID)
		}
		m.mu.Unlock()
	}
	klog.FromContext(ctx).V(2).Info("Tore down pod volumes", "podUID", podUID)
	return nil
}

func (ps *podState) isGone() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.gone
}

// CleanupOrphans removes the directories under RootDir/pods of pods that
// keep rejects and this manager does not hold set up: after a restart,
// those of pods deleted while berth was down. Mounts in them are unmounted
// first; a directory that still has a mount is left alone. Each orphan is
// logged once, not on every call. keep must accept every pod that still
// has a worker or containers in the runtime.
func (m *Manager) CleanupOrphans(ctx context.Context, keep func(types.UID) bool) error {
	logger := klog.FromContext(ctx)
	entries, err := os.ReadDir(filepath.Join(m.rootDir, "pods"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list pod directories: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		uid := types.UID(e.Name())
		if keep(uid) || m.holds(uid) {
			continue
		}
		dir, err := container.PodDir(m.rootDir, uid)
		if err == nil && m.csi != nil {
			// A CSI volume is unpublished by its driver, which may not
			// have registered yet after a restart: then the directory
			// stays until a later call.
			err = m.csi.TearDownPod(ctx, uid)
		}
		if err == nil {
			err = removeUnmounted(dir)
		}
		m.mu.Lock()
		_, seen := m.orphansSeen[uid]
		if err == nil {
			delete(m.orphansSeen, uid)
		} else {
			m.orphansSeen[uid] = struct{}{}
		}
		m.mu.Unlock()
		switch {
		case err == nil:
			logger.Info("Removed directory of orphaned pod", "podUID", uid)
		case !seen:
			logger.Error(err, "Cannot remove directory of orphaned pod; will retry quietly", "podUID", uid)
			errs = append(errs, err)
		default:
			logger.V(4).Info("Still cannot remove directory of orphaned pod", "podUID", uid, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// holds reports whether the manager has the pod's volumes set up.
func (m *Manager) holds(uid types.UID) bool {
	m.mu.Lock()
	ps := m.pods[uid]
	m.mu.Unlock()
	return ps != nil && !ps.isGone()
}
