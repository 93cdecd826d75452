package volume

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// setUpSecret projects a Secret's keys as files. Secrets are only ever
// written to a tmpfs, never to disk. A missing Secret fails the volume
// unless it is optional; then the volume is empty.
func (m *Manager) setUpSecret(ctx context.Context, pod *v1.Pod, vol *v1.Volume, vs *volumeState) (bool, error) {
	src := vol.Secret
	optional := src.Optional != nil && *src.Optional
	secret, err := m.getSecret(ctx, pod.Namespace, src.SecretName)
	if err != nil {
		if !apierrors.IsNotFound(err) || !optional {
			return false, err
		}
		secret = &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: src.SecretName}}
	}
	payload, err := secretPayload(src.Items, secret, modeOrDefault(src.DefaultMode), optional)
	if err != nil {
		return false, err
	}
	return m.setUpFiles(ctx, pod, vol, vs, dirSecret, true, payload)
}

func (m *Manager) getSecret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	if m.objects == nil {
		return nil, fmt.Errorf("cannot get secret %s/%s: berth has no source of Secrets", namespace, name)
	}
	return m.objects.GetSecret(ctx, namespace, name)
}

// secretPayload maps a Secret to files as configMapPayload does.
func secretPayload(items []v1.KeyToPath, secret *v1.Secret, defaultMode int32, optional bool) (map[string]fileProjection, error) {
	payload := make(map[string]fileProjection, len(secret.Data))
	if len(items) == 0 {
		for k, v := range secret.Data {
			payload[k] = fileProjection{data: v, mode: defaultMode}
		}
		return payload, nil
	}
	for _, item := range items {
		data, ok := secret.Data[item.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("references non-existent secret key: %s", item.Key)
		}
		payload[item.Path] = fileProjection{data: data, mode: itemMode(item.Mode, defaultMode)}
	}
	return payload, nil
}
