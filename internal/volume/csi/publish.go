package csi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// publishedVolume is a volume SetUp published for a pod, for its stats.
type publishedVolume struct {
	driver, handle string
	target         string
	staging        string // "" when not staged
	claim          *types.NamespacedName
}

// publishRequest is everything one stage + publish needs, decided before
// any call to the driver.
type publishRequest struct {
	driver      *driver
	handle      string
	specVolID   string
	mode        storagev1.VolumeLifecycleMode
	readOnly    bool
	fsType      string
	mountOpts   []string
	accessModes []v1.PersistentVolumeAccessMode
	attributes  map[string]string
	publishCtx  map[string]string
	stageSecret *v1.SecretReference
	pubSecret   *v1.SecretReference
	csiDriver   *storagev1.CSIDriver // nil: no CSIDriver object
	claim       *types.NamespacedName
}

// SetUpPersistent stages (when the driver stages) and publishes a CSI
// PersistentVolume for a pod, and expands it on the node when its claim
// waits for that. It returns the path containers mount and whether berth
// must apply the pod's fsGroup (the CSIDriver's fsGroupPolicy, unless the
// driver applies it itself). volName is the pod's volume. Idempotent: CSI
// calls are, and a restarted berth publishes again what it finds mounted.
func (m *Manager) SetUpPersistent(ctx context.Context, pod *v1.Pod, volName string, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, readOnly bool) (string, bool, error) {
	src := pv.Spec.CSI
	if src == nil {
		return "", false, fmt.Errorf("PersistentVolume %s is not a CSI volume", pv.Name)
	}
	if m.client == nil {
		return "", false, errors.New("CSI volumes need the API server (berth runs standalone)")
	}
	d, err := m.driver(src.Driver)
	if err != nil {
		return "", false, err
	}
	cd, err := m.csiDriver(ctx, src.Driver)
	if err != nil {
		return "", false, err
	}
	if err := supportsMode(cd, src.Driver, storagev1.VolumeLifecyclePersistent); err != nil {
		return "", false, err
	}
	req := publishRequest{
		driver:      d,
		handle:      src.VolumeHandle,
		specVolID:   pv.Name,
		mode:        storagev1.VolumeLifecyclePersistent,
		readOnly:    readOnly || src.ReadOnly,
		fsType:      src.FSType,
		mountOpts:   pv.Spec.MountOptions,
		accessModes: pv.Spec.AccessModes,
		attributes:  maps.Clone(src.VolumeAttributes),
		stageSecret: src.NodeStageSecretRef,
		pubSecret:   src.NodePublishSecretRef,
		csiDriver:   cd,
	}
	if pvc != nil {
		req.claim = &types.NamespacedName{Namespace: pvc.Namespace, Name: pvc.Name}
	}
	if attachRequired(cd) {
		if req.publishCtx, err = m.attachment(ctx, src.Driver, src.VolumeHandle); err != nil {
			return "", false, err
		}
	}
	target, err := m.publish(ctx, pod, volName, &req)
	if err != nil {
		return "", false, err
	}
	if pvc != nil && d.caps.expand {
		if err := m.expandIfPending(ctx, pvc, pv, &req, target); err != nil {
			return "", false, err
		}
	}
	return target, m.kubeletAppliesFSGroup(pod, &req), nil
}

// SetUpInline publishes an inline (ephemeral) CSI volume of a pod; its
// CSIDriver must allow the Ephemeral lifecycle mode. Returns as
// SetUpPersistent.
func (m *Manager) SetUpInline(ctx context.Context, pod *v1.Pod, vol *v1.Volume) (string, bool, error) {
	src := vol.CSI
	if m.client == nil {
		return "", false, errors.New("CSI volumes need the API server (berth runs standalone)")
	}
	d, err := m.driver(src.Driver)
	if err != nil {
		return "", false, err
	}
	cd, err := m.csiDriver(ctx, src.Driver)
	if err != nil {
		return "", false, err
	}
	if err := supportsMode(cd, src.Driver, storagev1.VolumeLifecycleEphemeral); err != nil {
		return "", false, err
	}
	req := publishRequest{
		driver:     d,
		handle:     ephemeralHandle(pod.UID, vol.Name),
		specVolID:  vol.Name,
		mode:       storagev1.VolumeLifecycleEphemeral,
		readOnly:   src.ReadOnly != nil && *src.ReadOnly,
		attributes: maps.Clone(src.VolumeAttributes),
		csiDriver:  cd,
	}
	if src.FSType != nil {
		req.fsType = *src.FSType
	}
	if src.NodePublishSecretRef != nil {
		req.pubSecret = &v1.SecretReference{Name: src.NodePublishSecretRef.Name, Namespace: pod.Namespace}
	}
	target, err := m.publish(ctx, pod, vol.Name, &req)
	if err != nil {
		return "", false, err
	}
	return target, m.kubeletAppliesFSGroup(pod, &req), nil
}

// publish stages and publishes under the volume's lock.
func (m *Manager) publish(ctx context.Context, pod *v1.Pod, volName string, req *publishRequest) (string, error) {
	d := req.driver
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod), "volume", volName, "driver", d.name, "volumeHandle", req.handle)
	unlock := m.volLocks.lock(d.name + "^" + req.handle)
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, csiTimeout)
	defer cancel()

	fsGroup := podFSGroup(pod)
	mode := csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	if req.mode == storagev1.VolumeLifecyclePersistent {
		mode = accessMode(req.accessModes, d.caps)
	}
	volCap := volumeCapability(req.fsType, req.mountOpts, mode, fsGroup, d.caps)

	staging := ""
	if req.mode == storagev1.VolumeLifecyclePersistent && d.caps.stageUnstage {
		staging = m.stagingPath(d.name, req.handle)
		if err := m.stage(ctx, req, staging, volCap); err != nil {
			return "", fmt.Errorf("MountVolume.MountDevice failed for volume %q : %w", volName, err)
		}
		logger.V(2).Info("Staged CSI volume", "path", staging)
	}

	target := filepath.Join(m.podVolumeDir(pod.UID, req.specVolID), mountDir)
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(target), err)
	}
	if err := saveVolumeData(filepath.Dir(target), map[string]string{
		keySpecVolID:     req.specVolID,
		keyVolumeHandle:  req.handle,
		keyDriverName:    d.name,
		keyNodeName:      m.nodeName,
		keyAttachmentID:  attachmentName(req.handle, d.name, m.nodeName),
		keyLifecycleMode: string(req.mode),
	}); err != nil {
		return "", err
	}
	secrets, err := m.secrets(ctx, req.pubSecret)
	if err != nil {
		return "", fmt.Errorf("fetching NodePublishSecretRef %s/%s failed: %w", req.pubSecret.Namespace, req.pubSecret.Name, err)
	}
	attrs := req.attributes
	if req.csiDriver != nil && req.csiDriver.Spec.PodInfoOnMount != nil && *req.csiDriver.Spec.PodInfoOnMount {
		if attrs == nil {
			attrs = map[string]string{}
		}
		maps.Copy(attrs, podInfo(pod, req.mode))
	}
	_, err = d.node.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{
		VolumeId:          req.handle,
		PublishContext:    req.publishCtx,
		StagingTargetPath: staging,
		TargetPath:        target,
		VolumeCapability:  volCap,
		Readonly:          req.readOnly,
		Secrets:           secrets,
		VolumeContext:     attrs,
	})
	if err != nil {
		if isFinalError(err) {
			// Nothing was mounted: leave no trace, as upstream.
			if rmErr := removeMountDir(target); rmErr != nil {
				logger.Error(rmErr, "Cannot clean up after a failed NodePublishVolume")
			}
		}
		return "", fmt.Errorf("NodePublishVolume of CSI driver %s: %w", d.name, err)
	}
	logger.V(2).Info("Published CSI volume", "path", target)

	m.mu.Lock()
	vols := m.published[pod.UID]
	if vols == nil {
		vols = make(map[string]publishedVolume)
		m.published[pod.UID] = vols
	}
	vols[volName] = publishedVolume{driver: d.name, handle: req.handle, target: target, staging: staging, claim: req.claim}
	m.mu.Unlock()
	return target, nil
}

// stage calls NodeStageVolume after recording the volume under its global
// directory, so that it can be unstaged even after a restart.
func (m *Manager) stage(ctx context.Context, req *publishRequest, staging string, volCap *csipb.VolumeCapability) error {
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", staging, err)
	}
	if err := saveVolumeData(filepath.Dir(staging), map[string]string{
		keyVolumeHandle: req.handle,
		keyDriverName:   req.driver.name,
	}); err != nil {
		return err
	}
	secrets, err := m.secrets(ctx, req.stageSecret)
	if err != nil {
		return fmt.Errorf("fetching NodeStageSecretRef %s/%s failed: %w", req.stageSecret.Namespace, req.stageSecret.Name, err)
	}
	_, err = req.driver.node.NodeStageVolume(ctx, &csipb.NodeStageVolumeRequest{
		VolumeId:          req.handle,
		PublishContext:    req.publishCtx,
		StagingTargetPath: staging,
		VolumeCapability:  volCap,
		Secrets:           secrets,
		VolumeContext:     req.attributes,
	})
	if err != nil {
		if isFinalError(err) {
			_ = removeMountDir(staging)
		}
		return fmt.Errorf("NodeStageVolume of CSI driver %s: %w", req.driver.name, err)
	}
	return nil
}

// csiDriver reads the CSIDriver object; nil when there is none (it is
// optional: a driver without one has upstream's defaults).
func (m *Manager) csiDriver(ctx context.Context, name string) (*storagev1.CSIDriver, error) {
	cd, err := m.client.StorageV1().CSIDrivers().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read CSIDriver %s: %w", name, err)
	}
	return cd, nil
}

// supportsMode is upstream's supportsVolumeLifecycleMode: without a
// CSIDriver object only persistent volumes are served.
func supportsMode(cd *storagev1.CSIDriver, name string, mode storagev1.VolumeLifecycleMode) error {
	switch {
	case cd == nil && mode == storagev1.VolumeLifecyclePersistent:
		return nil
	case cd == nil:
		return fmt.Errorf("volume mode %q not supported by driver %s (no CSIDriver object)", mode, name)
	case len(cd.Spec.VolumeLifecycleModes) == 0 && mode == storagev1.VolumeLifecyclePersistent:
		return nil // the API's default
	case slices.Contains(cd.Spec.VolumeLifecycleModes, mode):
		return nil
	default:
		return fmt.Errorf("volume mode %q not supported by driver %s (only supports %q)", mode, name, cd.Spec.VolumeLifecycleModes)
	}
}

// attachRequired: without a CSIDriver object, or unless it says
// attachRequired: false, the volume must be attached first (upstream's
// skipAttach).
func attachRequired(cd *storagev1.CSIDriver) bool {
	return cd == nil || cd.Spec.AttachRequired == nil || *cd.Spec.AttachRequired
}

// attachment waits for nothing: it reads the volume's VolumeAttachment on
// this node, and fails (the pod's worker retries) until the attacher has
// attached it; its metadata is the publish context. As upstream's
// WaitForAttach since it stopped watching (issue 124398).
func (m *Manager) attachment(ctx context.Context, driverName, handle string) (map[string]string, error) {
	name := attachmentName(handle, driverName, m.nodeName)
	va, err := m.client.StorageV1().VolumeAttachments().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("volume %v has GET error for volume attachment %v: %w", handle, name, err)
	}
	attached, err := attachmentReady(va)
	if err != nil {
		return nil, err
	}
	if !attached {
		return nil, fmt.Errorf("volume %v is not attached for volume attachment %v", handle, name)
	}
	return va.Status.AttachmentMetadata, nil
}

// attachmentReady is upstream's verifyAttachmentStatus.
func attachmentReady(va *storagev1.VolumeAttachment) (bool, error) {
	switch {
	case va.DeletionTimestamp != nil:
		return false, errors.New("volume attachment is being deleted")
	case va.Status.Attached:
		return true, nil
	case va.Status.AttachError != nil:
		return false, errors.New(va.Status.AttachError.Message)
	}
	return false, nil
}

// secrets reads a Secret's data as CSI secrets; none for a nil reference.
func (m *Manager) secrets(ctx context.Context, ref *v1.SecretReference) (map[string]string, error) {
	if ref == nil {
		return nil, nil
	}
	s, err := m.client.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(s.Data))
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out, nil
}

// podInfo is what a driver with podInfoOnMount gets in its volume context.
func podInfo(pod *v1.Pod, mode storagev1.VolumeLifecycleMode) map[string]string {
	return map[string]string{
		"csi.storage.k8s.io/pod.name":            pod.Name,
		"csi.storage.k8s.io/pod.namespace":       pod.Namespace,
		"csi.storage.k8s.io/pod.uid":             string(pod.UID),
		"csi.storage.k8s.io/serviceAccount.name": pod.Spec.ServiceAccountName,
		"csi.storage.k8s.io/ephemeral":           strconv.FormatBool(mode == storagev1.VolumeLifecycleEphemeral),
	}
}

func podFSGroup(pod *v1.Pod) *int64 {
	if sc := pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup
	}
	return nil
}

// kubeletAppliesFSGroup decides whether berth changes the volume's
// ownership to the pod's fsGroup: never when the driver does it
// (VOLUME_MOUNT_GROUP), else by the CSIDriver's fsGroupPolicy (upstream's
// supportsFSGroup; ReadWriteOnceWithFSType without a CSIDriver object).
func (m *Manager) kubeletAppliesFSGroup(pod *v1.Pod, req *publishRequest) bool {
	if req.driver.caps.volumeMountGroup {
		return false
	}
	policy := storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy
	if req.csiDriver != nil && req.csiDriver.Spec.FSGroupPolicy != nil {
		policy = *req.csiDriver.Spec.FSGroupPolicy
	}
	return fsGroupApplies(podFSGroup(pod) != nil, req.readOnly, policy, req.fsType, req.mode, req.accessModes)
}

// fsGroupApplies is the pure rule of kubeletAppliesFSGroup.
func fsGroupApplies(hasFSGroup, readOnly bool, policy storagev1.FSGroupPolicy, fsType string, mode storagev1.VolumeLifecycleMode, accessModes []v1.PersistentVolumeAccessMode) bool {
	switch {
	case !hasFSGroup || readOnly || policy == storagev1.NoneFSGroupPolicy:
		return false
	case policy == storagev1.FileFSGroupPolicy:
		return true
	case fsType == "":
		return false
	case mode == storagev1.VolumeLifecycleEphemeral:
		return true // inline volumes are published ReadWriteOnce
	default:
		return slices.Contains(accessModes, v1.ReadWriteOnce)
	}
}

// isFinalError: the driver is known to have done nothing (upstream's
// IsOperationFinishedError): any gRPC status but those that mean "still
// working or unknown".
func isFinalError(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Unavailable, codes.ResourceExhausted, codes.Aborted:
		return false
	}
	return true
}
