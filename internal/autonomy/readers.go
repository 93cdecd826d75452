package autonomy

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/berth-dev/berth/internal/source"
)

// stampSeen gives checkpointed pods the first-seen time berth stamps on
// every pod a source gives it (the checkpoint leaves it out).
func stampSeen(pods []*v1.Pod, now time.Time) []*v1.Pod {
	seen := now.Format(source.SeenTimeLayout)
	for _, p := range pods {
		annotations := make(map[string]string, len(p.Annotations)+1)
		maps.Copy(annotations, p.Annotations)
		annotations[source.AnnotationConfigSeen] = seen
		p.Annotations = annotations
	}
	return pods
}

// WatchedObjects is what the volume manager and the runtime read
// ConfigMaps and Secrets from (objects.Manager).
type WatchedObjects interface {
	RegisterPod(pod *v1.Pod)
	UnregisterPod(pod *v1.Pod)
	ObjectGetter
}

// Objects serves ConfigMaps and Secrets from berth's watches, and from the
// checkpoint while berth is offline or when a watch cannot answer (the API
// server is unreachable and the object was never listed since berth
// started).
type Objects struct {
	WatchedObjects
	m *Manager
}

// Objects wraps inner with the checkpoint.
func (m *Manager) Objects(inner WatchedObjects) *Objects {
	return &Objects{WatchedObjects: inner, m: m}
}

// GetConfigMap is objects.Manager's, with the checkpoint behind it.
func (o *Objects) GetConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	return fromCheckpoint(o.m, objectKey{kindConfigMap, namespace, name},
		func() (*v1.ConfigMap, error) { return o.WatchedObjects.GetConfigMap(ctx, namespace, name) },
		func() (*v1.ConfigMap, error) { return o.m.store.ConfigMap(namespace, name) })
}

// GetSecret is objects.Manager's, with the checkpoint behind it.
func (o *Objects) GetSecret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	return fromCheckpoint(o.m, objectKey{kindSecret, namespace, name},
		func() (*v1.Secret, error) { return o.WatchedObjects.GetSecret(ctx, namespace, name) },
		func() (*v1.Secret, error) { return o.m.store.Secret(namespace, name) })
}

// fromCheckpoint reads an object: offline from the checkpoint (the
// watches would only time out) unless its watch has listed it since, online
// from the watches, falling back to the checkpoint when they fail for a
// reason other than NotFound. Offline, an object the checkpoint does not
// hold is NotFound, as the API would say of an object nobody checkpointed
// because no pod read it.
func fromCheckpoint[T any](m *Manager, k objectKey, live, saved func() (T, error)) (T, error) {
	if !m.fromWatch(k) {
		obj, err := saved()
		if err == nil {
			return obj, nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			var zero T
			return zero, apierrors.NewNotFound(schema.GroupResource{Resource: groupResource(k.kind)}, k.name)
		}
		return obj, err
	}
	obj, err := live()
	if err == nil || apierrors.IsNotFound(err) {
		return obj, err
	}
	if saved, serr := saved(); serr == nil {
		return saved, nil
	}
	return obj, err
}

// groupResource names a kind in errors as the objects package does
// (`configmap "x" not found`).
func groupResource(kind string) string {
	if kind == kindSecret {
		return "secret"
	}
	return "configmap"
}

// Services serves the Service informer's cache, and the checkpoint while
// berth is offline (the informer has not listed then).
type Services struct {
	inner ServiceLister
	m     *Manager
}

// Services wraps inner (nil standalone) with the checkpoint.
func (m *Manager) Services(inner ServiceLister) *Services { return &Services{inner: inner, m: m} }

// HasSynced: listed, or berth started offline: the checkpoint serves
// until the informer has listed (its reconnect may lag behind the pods').
func (s *Services) HasSynced() bool {
	return (s.inner != nil && s.inner.HasSynced()) || s.m.startedOffline.Load()
}

// List returns a namespace's Services.
func (s *Services) List(namespace string) ([]*v1.Service, error) {
	if s.inner != nil && s.inner.HasSynced() {
		return s.inner.List(namespace)
	}
	return s.m.store.Services(namespace)
}
