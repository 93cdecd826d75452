package volume

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// trustBundleRefresh is how often a volume with ClusterTrustBundles is
// re-read: berth does not watch them.
const trustBundleRefresh = time.Minute

// setUpProjected merges its sources into one tmpfs volume: ConfigMaps,
// Secrets, downward API items, service-account tokens (requested through
// the TokenRequest API, bound to the pod, refreshed at 80% of their
// lifetime) and ClusterTrustBundles. Every failing source is reported.
// This is the volume admission gives every pod (kube-api-access-*).
func (m *Manager) setUpProjected(ctx context.Context, pod *v1.Pod, vol *v1.Volume, vs *volumeState) (bool, error) {
	src := vol.Projected
	defaultMode := modeOrDefault(src.DefaultMode)
	fsGroup, _ := fsGroupOf(pod)
	fsUser := fsUserOf(pod)
	// Token and trust bundle files are for the pod's user only when
	// upstream can tell who that is; the fsGroup then adds group read.
	privateMode := defaultMode
	if fsUser != nil || fsGroup != nil {
		privateMode = 0o600
	}

	payload := make(map[string]fileProjection)
	var refreshAt time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (refreshAt.IsZero() || t.Before(refreshAt)) {
			refreshAt = t
		}
	}
	var errs []error
	for i, s := range src.Sources {
		switch {
		case s.ConfigMap != nil:
			optional := s.ConfigMap.Optional != nil && *s.ConfigMap.Optional
			cm, err := m.getConfigMap(ctx, pod.Namespace, s.ConfigMap.Name)
			if err != nil {
				if !apierrors.IsNotFound(err) || !optional {
					errs = append(errs, err)
					continue
				}
				cm = &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: s.ConfigMap.Name}}
			}
			files, err := configMapPayload(s.ConfigMap.Items, cm, defaultMode, optional)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			merge(payload, files)
		case s.Secret != nil:
			optional := s.Secret.Optional != nil && *s.Secret.Optional
			secret, err := m.getSecret(ctx, pod.Namespace, s.Secret.Name)
			if err != nil {
				if !apierrors.IsNotFound(err) || !optional {
					errs = append(errs, err)
					continue
				}
				secret = &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: s.Secret.Name}}
			}
			files, err := secretPayload(s.Secret.Items, secret, defaultMode, optional)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			merge(payload, files)
		case s.DownwardAPI != nil:
			files, err := m.downwardAPIPayload(pod, s.DownwardAPI.Items, defaultMode)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			merge(payload, files)
		case s.ServiceAccountToken != nil:
			tok, err := m.serviceAccountToken(ctx, pod, vol.Name, vs, i, s.ServiceAccountToken)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			earlier(tok.refreshAt)
			payload[s.ServiceAccountToken.Path] = fileProjection{data: []byte(tok.tr.Status.Token), mode: privateMode, fsUser: fsUser}
		case s.ClusterTrustBundle != nil:
			data, err := m.trustAnchors(ctx, s.ClusterTrustBundle)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			earlier(m.clock.Now().Add(trustBundleRefresh))
			payload[s.ClusterTrustBundle.Path] = fileProjection{data: data, mode: privateMode, fsUser: fsUser}
		case s.PodCertificate != nil:
			errs = append(errs, errors.New("podCertificate projection is not supported by berth yet"))
		default:
			errs = append(errs, fmt.Errorf("projected source %d has no known type", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	changed, err := m.setUpFiles(ctx, pod, vol, vs, dirProjected, true, payload)
	if err != nil {
		return false, err
	}
	vs.refreshAt = refreshAt
	return changed, nil
}

func merge(dst, src map[string]fileProjection) {
	for k, v := range src {
		dst[k] = v
	}
}
