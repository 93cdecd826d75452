package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
)

// emptyDirMode is the mode of a disk-backed emptyDir: any user of any
// container may write (upstream's perm).
const emptyDirMode = os.FileMode(0o777)

// setUpEmptyDir creates an emptyDir: a directory under the pod, or for
// medium Memory a tmpfs sized to sizeLimit, the pod's memory limit or the
// node's allocatable memory, whichever is smallest. fsGroup applies once,
// at creation; a "ready" file under the pod's plugins directory records
// that, so a restarted berth adopts the volume without touching its data.
func (m *Manager) setUpEmptyDir(ctx context.Context, pod *v1.Pod, vol *v1.Volume, vs *volumeState) error {
	dir := m.volumeDir(pod.UID, dirEmptyDir, vol.Name)
	vs.path, vs.readOnly = dir, false
	if vs.ready {
		return nil
	}
	src := vol.EmptyDir
	readyFile := filepath.Join(m.pluginDir(pod.UID, dirEmptyDir, vol.Name), "ready")
	_, err := os.Stat(readyFile)
	wasReady := err == nil

	switch src.Medium {
	case v1.StorageMediumDefault:
		if wasReady {
			if _, err := os.Stat(dir); err == nil {
				vs.ready = true
				return nil
			}
			// Someone removed the volume: make it anew.
		}
		if err := makeDir(dir, emptyDirMode); err != nil {
			return err
		}
	case v1.StorageMediumMemory:
		if err := makeDir(dir, emptyDirMode); err != nil {
			return err
		}
		mounted, err := isTmpfsMount(dir)
		if err != nil {
			return fmt.Errorf("check mount of %s: %w", dir, err)
		}
		if mounted && wasReady {
			vs.ready = true
			return nil
		}
		if !mounted {
			size := m.tmpfsSize(pod, src.SizeLimit)
			m.logger(ctx, pod).V(3).Info("Mounting tmpfs for emptyDir", "volume", vol.Name, "size", size)
			if err := mountTmpfs(dir, size); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("emptyDir medium %q is not supported by berth yet", src.Medium)
	}

	fsGroup, _ := fsGroupOf(pod)
	if err := applyFSGroup(dir, fsGroup, nil, false); err != nil {
		// As upstream: the volume is usable, only perhaps not by the group.
		m.logger(ctx, pod).Error(err, "Cannot apply fsGroup to emptyDir", "volume", vol.Name)
	}
	if err := os.MkdirAll(filepath.Dir(readyFile), 0o750); err != nil {
		return fmt.Errorf("record emptyDir ready: %w", err)
	}
	if err := os.WriteFile(readyFile, nil, 0o600); err != nil {
		return fmt.Errorf("record emptyDir ready: %w", err)
	}
	vs.ready = true
	return nil
}

// makeDir creates dir with exactly mode, whatever the umask; an existing
// directory keeps its mode (its owner may have changed it).
func makeDir(dir string, mode os.FileMode) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Parents are berth's: only root needs to get through them.
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
	}
	if err := os.Mkdir(dir, mode); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}
