package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/storage/ephemeral"
	storagehelpers "k8s.io/component-helpers/storage/volume"
)

// pvcProtectionFinalizer keeps a claim in use from being deleted.
const pvcProtectionFinalizer = "kubernetes.io/pvc-protection"

// setUpPVC resolves a persistentVolumeClaim to its bound PersistentVolume
// and sets up what berth supports: local volumes (the fsGroup applies
// unless the claim is read-only), hostPath volumes (with their type
// check) and CSI volumes (through the CSI manager). Containers mount the
// volume's path directly. Other volume types are reported as not
// supported. The messages are upstream's.
func (m *Manager) setUpPVC(ctx context.Context, pod *v1.Pod, vol *v1.Volume, vs *volumeState) error {
	claim := vol.PersistentVolumeClaim
	return m.setUpClaim(ctx, pod, vol, vs, claim.ClaimName, claim.ReadOnly, false)
}

// setUpEphemeral sets up a generic ephemeral volume: the claim the
// ephemeral volume controller made for the pod (<pod>-<volume>), which
// must be the pod's, as upstream checks.
func (m *Manager) setUpEphemeral(ctx context.Context, pod *v1.Pod, vol *v1.Volume, vs *volumeState) error {
	return m.setUpClaim(ctx, pod, vol, vs, ephemeral.VolumeClaimName(pod, vol), false, true)
}

func (m *Manager) setUpClaim(ctx context.Context, pod *v1.Pod, vol *v1.Volume, vs *volumeState, claimName string, readOnly, ephemeralClaim bool) error {
	if vs.ready {
		return nil
	}
	if m.client == nil {
		return fmt.Errorf("cannot use PersistentVolumeClaim %s/%s: berth runs without an API server (standalone mode)", pod.Namespace, claimName)
	}
	pvcErr := func(err error) error {
		return fmt.Errorf("error processing PVC %s/%s: %v", pod.Namespace, claimName, err)
	}
	pvc, err := m.client.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(ctx, claimName, metav1.GetOptions{})
	if err != nil {
		return pvcErr(fmt.Errorf("failed to fetch PVC from API server: %v", err))
	}
	if ephemeralClaim {
		if err := ephemeral.VolumeIsForPod(pod, pvc); err != nil {
			return pvcErr(err)
		}
	}
	if pvc.DeletionTimestamp != nil && !slices.Contains(pvc.Finalizers, pvcProtectionFinalizer) {
		return pvcErr(errors.New("PVC is being deleted"))
	}
	if pvc.Status.Phase != v1.ClaimBound {
		return pvcErr(errors.New("PVC is not bound"))
	}
	if pvc.Spec.VolumeName == "" {
		return pvcErr(errors.New("PVC has empty pvc.Spec.VolumeName"))
	}
	pv, err := m.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return pvcErr(fmt.Errorf("failed to fetch PV %s from API server: %v", pvc.Spec.VolumeName, err))
	}
	if pv.Spec.ClaimRef == nil {
		return pvcErr(fmt.Errorf("found PV object %s but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim", pv.Name))
	}
	if pv.Spec.ClaimRef.UID != pvc.UID {
		return pvcErr(fmt.Errorf("found PV object %s but its pv.Spec.ClaimRef.UID %s does not point to claim.UID %s", pv.Name, pv.Spec.ClaimRef.UID, pvc.UID))
	}
	if pv.Spec.VolumeMode != nil && *pv.Spec.VolumeMode == v1.PersistentVolumeBlock {
		return fmt.Errorf("volume %s has volumeMode %s, but is specified in volumeMounts", vol.Name, v1.PersistentVolumeBlock)
	}
	if na := pv.Spec.NodeAffinity; na != nil && na.Required != nil {
		node, err := m.client.CoreV1().Nodes().Get(ctx, m.nodeName, metav1.GetOptions{})
		if err != nil {
			return &opError{"MountVolume.NodeAffinity check failed", fmt.Errorf("read node %s: %w", m.nodeName, err)}
		}
		// Upstream's check (component-helpers): it matches the node's
		// labels only, so a matchFields term is not held against the node.
		if err := storagehelpers.CheckNodeAffinity(pv, node.Labels); err != nil {
			return &opError{"MountVolume.NodeAffinity check failed", err}
		}
	}

	switch {
	case pv.Spec.Local != nil:
		path := pv.Spec.Local.Path
		info, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("local volume %s: %w", pv.Name, err)
		}
		if !info.IsDir() {
			return fmt.Errorf("local volume %s: %s is not a directory", pv.Name, path)
		}
		if !readOnly {
			fsGroup, policy := fsGroupOf(pod)
			if err := applyFSGroup(path, fsGroup, policy, false); err != nil {
				return err
			}
		}
		vs.path = path
	case pv.Spec.HostPath != nil:
		if err := setUpHostPath(pv.Spec.HostPath, vs); err != nil {
			return err
		}
	case pv.Spec.CSI != nil && m.csi != nil:
		path, ownFSGroup, err := m.csi.SetUpPersistent(ctx, pod, vol.Name, pvc, pv, readOnly)
		if err != nil {
			return err
		}
		if ownFSGroup {
			fsGroup, policy := fsGroupOf(pod)
			if err := applyFSGroup(path, fsGroup, policy, false); err != nil {
				return err
			}
		}
		vs.path = path
	default:
		return fmt.Errorf("volume type %q of PersistentVolume %s is not supported by berth yet", sourceType(&pv.Spec.PersistentVolumeSource), pv.Name)
	}
	vs.readOnly = readOnly
	vs.ready = true
	return nil
}
