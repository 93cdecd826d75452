package volume

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// setUpConfigMap projects a ConfigMap's keys as files, on disk as upstream
// (a ConfigMap holds no secrets). A missing ConfigMap fails the volume
// unless it is optional; then the volume is empty.
func (m *Manager) setUpConfigMap(ctx context.Context, pod *v1.Pod, vol *v1.Volume, vs *volumeState) (bool, error) {
	src := vol.ConfigMap
	optional := src.Optional != nil && *src.Optional
	cm, err := m.getConfigMap(ctx, pod.Namespace, src.Name)
	if err != nil {
		if !apierrors.IsNotFound(err) || !optional {
			return false, err
		}
		cm = &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: src.Name}}
	}
	payload, err := configMapPayload(src.Items, cm, modeOrDefault(src.DefaultMode), optional)
	if err != nil {
		return false, err
	}
	return m.setUpFiles(ctx, pod, vol, vs, dirConfigMap, false, payload)
}

func (m *Manager) getConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	if m.objects == nil {
		return nil, fmt.Errorf("cannot get configmap %s/%s: berth has no source of ConfigMaps", namespace, name)
	}
	return m.objects.GetConfigMap(ctx, namespace, name)
}

// configMapPayload maps a ConfigMap to files: every key (data and
// binaryData) under its own name, or only the listed items, each with its
// own mode or defaultMode. A listed key that does not exist is an error
// unless the reference is optional.
func configMapPayload(items []v1.KeyToPath, cm *v1.ConfigMap, defaultMode int32, optional bool) (map[string]fileProjection, error) {
	payload := make(map[string]fileProjection, len(cm.Data)+len(cm.BinaryData))
	if len(items) == 0 {
		for k, v := range cm.Data {
			payload[k] = fileProjection{data: []byte(v), mode: defaultMode}
		}
		for k, v := range cm.BinaryData {
			payload[k] = fileProjection{data: v, mode: defaultMode}
		}
		return payload, nil
	}
	for _, item := range items {
		var data []byte
		if s, ok := cm.Data[item.Key]; ok {
			data = []byte(s)
		} else if b, ok := cm.BinaryData[item.Key]; ok {
			data = b
		} else {
			if optional {
				continue
			}
			return nil, fmt.Errorf("configmap references non-existent config key: %s", item.Key)
		}
		payload[item.Path] = fileProjection{data: data, mode: itemMode(item.Mode, defaultMode)}
	}
	return payload, nil
}

func itemMode(mode *int32, defaultMode int32) int32 {
	if mode != nil {
		return *mode
	}
	return defaultMode
}
