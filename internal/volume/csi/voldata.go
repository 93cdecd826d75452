package csi

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"k8s.io/apimachinery/pkg/types"
)

// Upstream's names: the plugin, its directories, the metadata file and
// its keys (volDataKey in pkg/volume/csi).
const (
	pluginName      = "kubernetes.io/csi"
	podPluginDir    = "kubernetes.io~csi" // escaped plugin name under pods/<uid>/volumes
	volDataFileName = "vol_data.json"
	globalMountDir  = "globalmount"
	mountDir        = "mount"

	keySpecVolID     = "specVolID"
	keyVolumeHandle  = "volumeHandle"
	keyDriverName    = "driverName"
	keyNodeName      = "nodeName"
	keyAttachmentID  = "attachmentID"
	keyLifecycleMode = "volumeLifecycleMode"
)

// stagingPath is the global mount of a volume: one per node, shared by
// every pod that uses the volume.
func (m *Manager) stagingPath(driverName, handle string) string {
	return filepath.Join(m.rootDir, "plugins", pluginName, driverName, fmt.Sprintf("%x", sha256.Sum256([]byte(handle))), globalMountDir)
}

// podVolumeDir is where a pod's CSI volume lives; specVolID is the PV's
// name, or the pod's volume name for an inline volume.
func (m *Manager) podVolumeDir(podUID types.UID, specVolID string) string {
	return filepath.Join(m.rootDir, "pods", string(podUID), "volumes", podPluginDir, escapeQualifiedName(specVolID))
}

// escapeQualifiedName is upstream's utilstrings.EscapeQualifiedName.
func escapeQualifiedName(in string) string {
	return strings.ReplaceAll(in, "/", "~")
}

// attachmentName is the VolumeAttachment of a volume on a node, as the
// attach/detach controller names it: csi-<sha256(handle, driver, node)>.
func attachmentName(handle, driverName, nodeName string) string {
	return fmt.Sprintf("csi-%x", sha256.Sum256([]byte(handle+driverName+nodeName)))
}

// ephemeralHandle is the volume handle of an inline volume:
// csi-<sha256(podUID, volume name)>.
func ephemeralHandle(podUID types.UID, volName string) string {
	return fmt.Sprintf("csi-%x", sha256.Sum256([]byte(string(podUID)+volName)))
}

func saveVolumeData(dir string, data map[string]string) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+volDataFileName+".tmp")
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("failed to save volume info data: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, volDataFileName)); err != nil {
		return fmt.Errorf("failed to save volume info data: %w", err)
	}
	return nil
}

func loadVolumeData(dir string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, volDataFileName))
	if err != nil {
		return nil, err
	}
	data := map[string]string{}
	if err := json.Unmarshal(b, &data); err != nil {
		return nil, fmt.Errorf("failed to parse %s in %s: %w", volDataFileName, dir, err)
	}
	return data, nil
}

// removeMountDir removes a mount or staging directory that is no longer
// mounted, then the metadata file and their parent, as upstream's
// removeMountDir. A directory still mounted is an error (rmdir fails with
// EBUSY), so nothing is removed from under a mount.
func removeMountDir(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("%s is still mounted", path)
		}
		return fmt.Errorf("failed to remove dir [%s]: %w", path, err)
	}
	parent := filepath.Dir(path)
	if err := os.Remove(filepath.Join(parent, volDataFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to delete volume data file: %w", err)
	}
	if err := os.Remove(parent); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to delete volume path [%s]: %w", parent, err)
	}
	return nil
}
