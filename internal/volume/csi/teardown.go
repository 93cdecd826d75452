package csi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// TearDownPod unpublishes every CSI volume of a pod that its directory
// records (so also those of a pod deleted while berth was down), then
// unstages the volumes no pod publishes any more. Call it once the pod's
// containers are gone and before anything else is unmounted under the pod's
// directory. A driver not registered (yet) is an error: the caller retries,
// and the volume stays mounted until its driver is back.
func (m *Manager) TearDownPod(ctx context.Context, podUID types.UID) error {
	dir := filepath.Join(m.rootDir, "pods", string(podUID), "volumes", podPluginDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		m.forgetPod(podUID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("list CSI volumes of pod %s: %w", podUID, err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := m.unpublish(ctx, podUID, filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		m.forgetPod(podUID)
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(entries) > 0 {
		if err := m.UnstageUnused(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) forgetPod(podUID types.UID) {
	m.mu.Lock()
	delete(m.published, podUID)
	m.mu.Unlock()
}

// unpublish calls NodeUnpublishVolume for one pod volume directory and
// removes it.
func (m *Manager) unpublish(ctx context.Context, podUID types.UID, volDir string) error {
	target := filepath.Join(volDir, mountDir)
	data, err := loadVolumeData(volDir)
	if errors.Is(err, fs.ErrNotExist) {
		// Never published (the metadata is written first): only the
		// directories to remove.
		return removeMountDir(target)
	}
	if err != nil {
		return err
	}
	driverName, handle := data[keyDriverName], data[keyVolumeHandle]
	unlock := m.volLocks.lock(driverName + "^" + handle)
	defer unlock()
	d, err := m.driver(driverName)
	if err != nil {
		return fmt.Errorf("UnmountVolume.TearDown failed for volume %q (UniqueName: %q) pod %q: %w", data[keySpecVolID], uniqueName(driverName, handle), podUID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, csiTimeout)
	defer cancel()
	if _, err := d.node.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: handle, TargetPath: target}); err != nil {
		return fmt.Errorf("UnmountVolume.TearDown failed for volume %q (UniqueName: %q) pod %q: NodeUnpublishVolume: %w", data[keySpecVolID], uniqueName(driverName, handle), podUID, err)
	}
	// The driver must remove the target; the kubelet removes what it made.
	if err := removeMountDir(target); err != nil {
		return fmt.Errorf("UnmountVolume.TearDown failed for volume %q: %w", data[keySpecVolID], err)
	}
	klog.FromContext(ctx).V(2).Info("Unpublished CSI volume", "podUID", podUID, "driver", driverName, "volumeHandle", handle,
		"lifecycleMode", data[keyLifecycleMode])
	return nil
}

// UnstageUnused unstages every staged volume that no pod's volume
// directory records any more. Run after unpublishing, and by the orphan
// cleanup: an unstage that failed, or a restart between unpublish and
// unstage, is caught up with here.
func (m *Manager) UnstageUnused(ctx context.Context) error {
	staged, err := m.stagedVolumes()
	if err != nil || len(staged) == 0 {
		return err
	}
	var errs []error
	for _, sv := range staged {
		if err := m.unstageIfUnused(ctx, sv); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type volumeKey struct{ driver, handle string }

// stagedVolumes lists plugins/kubernetes.io/csi/<driver>/<sha>/vol_data.json.
func (m *Manager) stagedVolumes() ([]volumeKey, error) {
	matches, err := filepath.Glob(filepath.Join(m.rootDir, "plugins", pluginName, "*", "*", volDataFileName))
	if err != nil {
		return nil, err
	}
	var out []volumeKey
	for _, f := range matches {
		data, err := loadVolumeData(filepath.Dir(f))
		if err != nil {
			continue // removed meanwhile, or not ours
		}
		out = append(out, volumeKey{data[keyDriverName], data[keyVolumeHandle]})
	}
	return out, nil
}

// published lists the persistent volumes some pod's directory records.
func (m *Manager) publishedOnDisk() (map[volumeKey]bool, error) {
	matches, err := filepath.Glob(filepath.Join(m.rootDir, "pods", "*", "volumes", podPluginDir, "*", volDataFileName))
	if err != nil {
		return nil, err
	}
	out := make(map[volumeKey]bool, len(matches))
	for _, f := range matches {
		data, err := loadVolumeData(filepath.Dir(f))
		if err != nil {
			continue
		}
		if data[keyLifecycleMode] == string(storagev1.VolumeLifecycleEphemeral) {
			continue
		}
		out[volumeKey{data[keyDriverName], data[keyVolumeHandle]}] = true
	}
	return out, nil
}

// unstageIfUnused unstages one volume under its lock, after checking that
// no pod publishes it (a publish holds the same lock from stage to the
// write of its own vol_data.json).
func (m *Manager) unstageIfUnused(ctx context.Context, v volumeKey) error {
	unlock := m.volLocks.lock(v.driver + "^" + v.handle)
	defer unlock()
	used, err := m.publishedOnDisk()
	if err != nil {
		return err
	}
	if used[v] {
		return nil
	}
	staging := m.stagingPath(v.driver, v.handle)
	if _, err := os.Stat(filepath.Join(filepath.Dir(staging), volDataFileName)); errors.Is(err, fs.ErrNotExist) {
		return nil // unstaged meanwhile
	}
	d, err := m.driver(v.driver)
	if err != nil {
		return fmt.Errorf("UnmountDevice failed for volume %q: %w", uniqueName(v.driver, v.handle), err)
	}
	if d.caps.stageUnstage {
		ctx, cancel := context.WithTimeout(ctx, csiTimeout)
		defer cancel()
		if _, err := d.node.NodeUnstageVolume(ctx, &csipb.NodeUnstageVolumeRequest{VolumeId: v.handle, StagingTargetPath: staging}); err != nil {
			return fmt.Errorf("UnmountDevice failed for volume %q: NodeUnstageVolume: %w", uniqueName(v.driver, v.handle), err)
		}
	}
	if err := removeMountDir(staging); err != nil {
		return fmt.Errorf("failed to clean up global mount %s: %w", staging, err)
	}
	klog.FromContext(ctx).V(2).Info("Unstaged CSI volume", "driver", v.driver, "volumeHandle", v.handle)
	return nil
}

// uniqueName is the volume's unique name in upstream's volume manager
// (kubernetes.io/csi/<driver>^<handle>).
func uniqueName(driver, handle string) string {
	return pluginName + "/" + driver + "^" + handle
}
