package volume

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// Plugin directories under pods/<uid>/volumes, upstream's escaped plugin
// names.
const (
	dirEmptyDir    = "kubernetes.io~empty-dir"
	dirConfigMap   = "kubernetes.io~configmap"
	dirSecret      = "kubernetes.io~secret"
	dirDownwardAPI = "kubernetes.io~downward-api"
	dirProjected   = "kubernetes.io~projected"
)

// Kinds of objects in ObjectChanged, as internal/objects reports them.
const (
	kindConfigMap = "ConfigMap"
	kindSecret    = "Secret"
)

// setUpVolume sets up one volume, or brings a set-up one up to date. It
// reports whether the files of a file-based volume changed. ps.mu is held.
func (m *Manager) setUpVolume(ctx context.Context, ps *podState, vol *v1.Volume) (bool, error) {
	vs := ps.volumes[vol.Name]
	if vs == nil {
		vs = &volumeState{}
		ps.volumes[vol.Name] = vs
	}
	pod := ps.pod
	switch {
	case vol.EmptyDir != nil:
		return false, m.setUpEmptyDir(ctx, pod, vol, vs)
	case vol.HostPath != nil:
		return false, setUpHostPath(vol.HostPath, vs)
	case vol.ConfigMap != nil:
		return m.setUpConfigMap(ctx, pod, vol, vs)
	case vol.Secret != nil:
		return m.setUpSecret(ctx, pod, vol, vs)
	case vol.DownwardAPI != nil:
		return m.setUpDownwardAPI(ctx, pod, vol, vs)
	case vol.Projected != nil:
		return m.setUpProjected(ctx, pod, vol, vs)
	case vol.PersistentVolumeClaim != nil:
		return false, m.setUpPVC(ctx, pod, vol, vs)
	case vol.Ephemeral != nil:
		return false, m.setUpEphemeral(ctx, pod, vol, vs)
	case vol.CSI != nil && m.csi != nil:
		return false, m.setUpInlineCSI(ctx, pod, vol, vs)
	case vol.Image != nil:
		// The runtime mounts the image (internal/runtime); nothing on the
		// host side, as upstream's image volume plugin.
		return false, nil
	default:
		return false, fmt.Errorf("volume type %q is not supported by berth yet", sourceType(&vol.VolumeSource))
	}
}

// sourceType names the type of a volume source (a *v1.VolumeSource or
// *v1.PersistentVolumeSource) as the API does: "csi", "ephemeral", "nfs"...
func sourceType(src any) string {
	v := reflect.ValueOf(src).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return "unknown"
}

// usedVolumes returns the names of the volumes some container mounts
// (volumeMounts or volumeDevices, in any kind of container): upstream sets
// up only those.
func usedVolumes(pod *v1.Pod) map[string]bool {
	used := make(map[string]bool)
	add := func(mounts []v1.VolumeMount, devices []v1.VolumeDevice) {
		for _, vm := range mounts {
			used[vm.Name] = true
		}
		for _, d := range devices {
			used[d.Name] = true
		}
	}
	for i := range pod.Spec.InitContainers {
		add(pod.Spec.InitContainers[i].VolumeMounts, pod.Spec.InitContainers[i].VolumeDevices)
	}
	for i := range pod.Spec.Containers {
		add(pod.Spec.Containers[i].VolumeMounts, pod.Spec.Containers[i].VolumeDevices)
	}
	for i := range pod.Spec.EphemeralContainers {
		add(pod.Spec.EphemeralContainers[i].VolumeMounts, pod.Spec.EphemeralContainers[i].VolumeDevices)
	}
	return used
}

// volumeObjects lists the ConfigMaps and Secrets whose content a volume
// shows, so Run knows which pods to rewrite when one changes.
func volumeObjects(namespace string, vol *v1.Volume) []objectKey {
	var keys []objectKey
	switch {
	case vol.ConfigMap != nil:
		keys = append(keys, objectKey{kindConfigMap, namespace, vol.ConfigMap.Name})
	case vol.Secret != nil:
		keys = append(keys, objectKey{kindSecret, namespace, vol.Secret.SecretName})
	case vol.Projected != nil:
		for _, src := range vol.Projected.Sources {
			if src.ConfigMap != nil {
				keys = append(keys, objectKey{kindConfigMap, namespace, src.ConfigMap.Name})
			}
			if src.Secret != nil {
				keys = append(keys, objectKey{kindSecret, namespace, src.Secret.Name})
			}
		}
	}
	return keys
}

// Security context of the pod as it bears on volumes.

// fsGroupOf returns the pod's fsGroup and fsGroupChangePolicy.
func fsGroupOf(pod *v1.Pod) (*int64, *v1.PodFSGroupChangePolicy) {
	if sc := pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup, sc.FSGroupChangePolicy
	}
	return nil, nil
}

// fsUserOf returns the user every container of the pod runs as, or nil if
// one does not say or they differ: upstream then owns projected token files
// by that user (FsUserFrom).
func fsUserOf(pod *v1.Pod) *int64 {
	var user *int64
	ok := true
	visit := func(sc *v1.SecurityContext) {
		if !ok {
			return
		}
		var u *int64
		if sc != nil && sc.RunAsUser != nil {
			u = sc.RunAsUser
		} else if pod.Spec.SecurityContext != nil {
			u = pod.Spec.SecurityContext.RunAsUser
		}
		if u == nil || (user != nil && *user != *u) {
			ok = false
			return
		}
		user = u
	}
	for i := range pod.Spec.InitContainers {
		visit(pod.Spec.InitContainers[i].SecurityContext)
	}
	for i := range pod.Spec.Containers {
		visit(pod.Spec.Containers[i].SecurityContext)
	}
	for i := range pod.Spec.EphemeralContainers {
		visit(pod.Spec.EphemeralContainers[i].SecurityContext)
	}
	if !ok {
		return nil
	}
	return user
}
