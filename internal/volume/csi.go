package volume

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// CSI serves the volumes of CSI drivers; *csi.Manager implements it. The
// Set-up methods return the path containers mount and whether berth must
// apply the pod's fsGroup to it (the CSIDriver's fsGroupPolicy).
type CSI interface {
	SetUpPersistent(ctx context.Context, pod *v1.Pod, volName string, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, readOnly bool) (string, bool, error)
	SetUpInline(ctx context.Context, pod *v1.Pod, vol *v1.Volume) (string, bool, error)
	// TearDownPod unpublishes the pod's CSI volumes (and unstages those no
	// pod uses); called before anything under the pod's directory is
	// unmounted.
	TearDownPod(ctx context.Context, podUID types.UID) error
}

// setUpInlineCSI publishes an inline CSI volume (a driver's Ephemeral
// lifecycle mode).
func (m *Manager) setUpInlineCSI(ctx context.Context, pod *v1.Pod, vol *v1.Volume, vs *volumeState) error {
	if vs.ready {
		return nil
	}
	path, ownFSGroup, err := m.csi.SetUpInline(ctx, pod, vol)
	if err != nil {
		return err
	}
	readOnly := vol.CSI.ReadOnly != nil && *vol.CSI.ReadOnly
	if ownFSGroup {
		fsGroup, policy := fsGroupOf(pod)
		if err := applyFSGroup(path, fsGroup, policy, false); err != nil {
			return err
		}
	}
	vs.path, vs.readOnly, vs.ready = path, readOnly, true
	return nil
}
