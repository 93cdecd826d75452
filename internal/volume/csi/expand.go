package csi

import (
	"context"
	"encoding/json"
	"fmt"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// expansionSize is the size to expand a published volume to on the node,
// or false: the claim's resize waits for the node (its storage status is
// NodeResizePending or NodeResizeInProgress, as the external-resizer
// leaves it) and the volume is larger than the claim's capacity says.
func expansionSize(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) (resource.Quantity, bool) {
	want, ok := pv.Spec.Capacity[v1.ResourceStorage]
	if !ok {
		return resource.Quantity{}, false
	}
	switch pvc.Status.AllocatedResourceStatuses[v1.ResourceStorage] {
	case v1.PersistentVolumeClaimNodeResizePending, v1.PersistentVolumeClaimNodeResizeInProgress:
	default:
		return resource.Quantity{}, false
	}
	have := pvc.Status.Capacity[v1.ResourceStorage]
	if have.Cmp(want) >= 0 {
		return resource.Quantity{}, false
	}
	return want, true
}

// expandIfPending calls NodeExpandVolume when the claim waits for it, then
// records the new capacity on the claim and clears its resize status and
// conditions (upstream's MarkNodeExpansionFinishedWithRecovery).
func (m *Manager) expandIfPending(ctx context.Context, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, req *publishRequest, target string) error {
	size, ok := expansionSize(pvc, pv)
	if !ok {
		return nil
	}
	d := req.driver
	staging := ""
	if d.caps.stageUnstage {
		staging = m.stagingPath(d.name, req.handle)
	}
	cctx, cancel := context.WithTimeout(ctx, csiTimeout)
	defer cancel()
	_, err := d.node.NodeExpandVolume(cctx, &csipb.NodeExpandVolumeRequest{
		VolumeId:          req.handle,
		VolumePath:        target,
		CapacityRange:     &csipb.CapacityRange{RequiredBytes: size.Value()},
		StagingTargetPath: staging,
		VolumeCapability:  volumeCapability(req.fsType, req.mountOpts, accessMode(req.accessModes, d.caps), nil, d.caps),
	})
	if err != nil {
		return fmt.Errorf("MountVolume.NodeExpandVolume failed for volume %q: %w", pv.Name, err)
	}
	patch, err := expansionFinishedPatch(pvc, size)
	if err != nil {
		return err
	}
	if _, err := m.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Patch(ctx, pvc.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("MountVolume.NodeExpandVolume failed to update PVC %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	klog.FromContext(ctx).Info("MountVolume.NodeExpandVolume succeeded", "pvc", klog.KObj(pvc), "volume", pv.Name, "size", size.String())
	return nil
}

// expansionFinishedPatch is the claim status merge patch after a node
// expansion: the new capacity, no storage resize status, and the resize
// conditions (Resizing, FileSystemResizePending, NodeResizeError) gone.
func expansionFinishedPatch(pvc *v1.PersistentVolumeClaim, size resource.Quantity) ([]byte, error) {
	conds := []v1.PersistentVolumeClaimCondition{}
	for _, c := range pvc.Status.Conditions {
		switch c.Type {
		case v1.PersistentVolumeClaimResizing, v1.PersistentVolumeClaimFileSystemResizePending, v1.PersistentVolumeClaimNodeResizeError:
			continue
		}
		conds = append(conds, c)
	}
	status := map[string]any{
		"capacity":                  map[string]string{string(v1.ResourceStorage): size.String()},
		"allocatedResourceStatuses": map[string]any{string(v1.ResourceStorage): nil},
		"conditions":                conds,
	}
	return json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": pvc.ResourceVersion},
		"status":   status,
	})
}
