package objects

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// defaultSyncTimeout bounds how long a Get waits for the first list of a
// just-registered object; a caller that gives up retries later anyway.
const defaultSyncTimeout = 2 * time.Second

// Options configures a Manager.
type Options struct {
	// Client reads the objects. Nil in standalone mode: every Get then fails
	// with a clear error and RegisterPod does nothing.
	Client kubernetes.Interface
	// SyncTimeout bounds how long Get waits for the first list of a
	// just-registered object. Zero means 2s.
	SyncTimeout time.Duration
}

// Manager keeps the ConfigMaps and Secrets of registered pods.
type Manager struct {
	client kubernetes.Interface
	// subscriber is set by Run, before any watch starts.
	subscriber  Subscriber
	syncTimeout time.Duration

	mu sync.Mutex
	// ctx is Run's context; nil before Run starts and after it returns.
	// Watches registered meanwhile start when Run does.
	ctx     context.Context
	watches map[key]*objectWatch
	pods    map[types.UID][]key
	// running is closed once Run has started (tests wait on it).
	running chan struct{}
}

type key struct{ kind, namespace, name string }

// objectWatch is the watch of one object and the pods that reference it.
type objectWatch struct {
	key    key
	store  *objectStore
	pods   map[types.UID]struct{}
	cancel context.CancelFunc // nil while not running
	// immutable objects cannot change: their watch stops after the first
	// version is stored, as upstream's does.
	immutable bool
}

// New returns a Manager; call Run to start watching.
func New(opts Options) *Manager {
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = defaultSyncTimeout
	}
	return &Manager{
		client:      opts.Client,
		syncTimeout: opts.SyncTimeout,
		watches:     make(map[key]*objectWatch),
		pods:        make(map[types.UID][]key),
		running:     make(chan struct{}),
	}
}

// Subscriber is told (from a watch goroutine; it must not block) whenever
// a watched object is created, changed or deleted, after Get already
// returns the new state. kind is KindConfigMap or KindSecret. The volume
// manager is one; it reads objects from the Manager, so it is handed over
// at Run rather than at New.
type Subscriber interface {
	ObjectChanged(kind, namespace, name string)
}

// Run runs the watches until ctx is cancelled, telling sub (may be nil)
// of every change; call it once. Watches registered before it starts begin
// then; until then Get asks the API server directly.
func (m *Manager) Run(ctx context.Context, sub Subscriber) {
	m.mu.Lock()
	m.ctx = ctx
	m.subscriber = sub
	for _, w := range m.watches {
		m.startLocked(w)
	}
	m.mu.Unlock()
	close(m.running)

	<-ctx.Done()

	m.mu.Lock()
	m.ctx = nil
	for _, w := range m.watches {
		w.cancel = nil // cancelled with ctx
	}
	m.mu.Unlock()
}

// RegisterPod starts watching every ConfigMap and Secret the pod references
// (volumes, projected sources, env, envFrom, imagePullSecrets) and stops
// the watches that only an earlier version of the pod needed.
func (m *Manager) RegisterPod(pod *v1.Pod) {
	if m.client == nil {
		return
	}
	refs := references(pod)
	keys := make([]key, 0, len(refs))
	for _, r := range refs {
		keys = append(keys, key{r.kind, pod.Namespace, r.name})
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		w, ok := m.watches[k]
		if !ok {
			w = m.newWatch(k)
			m.watches[k] = w
			m.startLocked(w)
		}
		w.pods[pod.UID] = struct{}{}
	}
	for _, old := range m.pods[pod.UID] {
		if !containsKey(keys, old) {
			m.releaseLocked(old, pod.UID)
		}
	}
	if len(keys) == 0 {
		delete(m.pods, pod.UID)
	} else {
		m.pods[pod.UID] = keys
	}
}

// UnregisterPod drops the pod's references; objects no other pod
// references stop being watched and are forgotten.
func (m *Manager) UnregisterPod(pod *v1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.pods[pod.UID] {
		m.releaseLocked(k, pod.UID)
	}
	delete(m.pods, pod.UID)
}

// GetConfigMap returns the ConfigMap from the watch cache (callers must not
// modify it). A missing object is reported as apierrors.IsNotFound.
func (m *Manager) GetConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	obj, err := m.get(ctx, key{KindConfigMap, namespace, name})
	if err != nil {
		return nil, err
	}
	cm, ok := obj.(*v1.ConfigMap)
	if !ok {
		return nil, fmt.Errorf("configmap %s/%s: unexpected object type %T", namespace, name, obj)
	}
	return cm, nil
}

// GetSecret returns the Secret from the watch cache (callers must not
// modify it). A missing object is reported as apierrors.IsNotFound.
func (m *Manager) GetSecret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	obj, err := m.get(ctx, key{KindSecret, namespace, name})
	if err != nil {
		return nil, err
	}
	s, ok := obj.(*v1.Secret)
	if !ok {
		return nil, fmt.Errorf("secret %s/%s: unexpected object type %T", namespace, name, obj)
	}
	return s, nil
}

// groupResource names objects in errors the way upstream's kubelet does,
// so that a missing ConfigMap reads `configmap "x" not found`.
func groupResource(kind string) schema.GroupResource {
	if kind == KindSecret {
		return schema.GroupResource{Resource: "secret"}
	}
	return schema.GroupResource{Resource: "configmap"}
}

func (m *Manager) get(ctx context.Context, k key) (runtime.Object, error) {
	gr := groupResource(k.kind)
	if m.client == nil {
		return nil, fmt.Errorf("cannot get %s %s/%s: berth runs without an API server (standalone mode)", gr.Resource, k.namespace, k.name)
	}
	m.mu.Lock()
	w := m.watches[k]
	running := w != nil && (w.cancel != nil || w.immutable)
	m.mu.Unlock()
	if !running {
		// Not registered (or not watching yet): ask the API server.
		return m.fetch(ctx, k)
	}

	obj, synced := w.store.get()
	if !synced {
		timer := time.NewTimer(m.syncTimeout)
		defer timer.Stop()
		select {
		case <-w.store.synced:
		case <-timer.C:
			return nil, fmt.Errorf("failed to sync %s cache: %s/%s not listed from the API server within %s", gr.Resource, k.namespace, k.name, m.syncTimeout)
		case <-ctx.Done():
			return nil, fmt.Errorf("get %s %s/%s: %w", gr.Resource, k.namespace, k.name, ctx.Err())
		}
		obj, _ = w.store.get()
	}
	if obj == nil {
		return nil, apierrors.NewNotFound(gr, k.name)
	}
	if isImmutable(obj) {
		m.stopWatching(w)
	}
	return obj, nil
}

// fetch reads an object straight from the API server.
func (m *Manager) fetch(ctx context.Context, k key) (runtime.Object, error) {
	var obj runtime.Object
	var err error
	switch k.kind {
	case KindSecret:
		obj, err = m.client.CoreV1().Secrets(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
	default:
		obj, err = m.client.CoreV1().ConfigMaps(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(groupResource(k.kind), k.name)
	}
	return obj, err
}

func (m *Manager) newWatch(k key) *objectWatch {
	w := &objectWatch{key: k, pods: make(map[types.UID]struct{})}
	w.store = newObjectStore(k.name, func(obj runtime.Object) { m.changed(w, obj) })
	return w
}

// changed runs on the watch goroutine after the store took a new version.
func (m *Manager) changed(w *objectWatch, obj runtime.Object) {
	if isImmutable(obj) {
		m.stopWatching(w)
	}
	if m.subscriber != nil {
		m.subscriber.ObjectChanged(w.key.kind, w.key.namespace, w.key.name)
	}
}

// stopWatching stops the watch of an object that can no longer change; its
// stored version stays for Get.
func (m *Manager) stopWatching(w *objectWatch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w.immutable = true
	if w.cancel != nil {
		w.cancel()
		w.cancel = nil
	}
}

func isImmutable(obj runtime.Object) bool {
	switch o := obj.(type) {
	case *v1.ConfigMap:
		return o.Immutable != nil && *o.Immutable
	case *v1.Secret:
		return o.Immutable != nil && *o.Immutable
	}
	return false
}

// startLocked starts the watch's reflector if Run is running.
func (m *Manager) startLocked(w *objectWatch) {
	if m.ctx == nil || w.cancel != nil || w.immutable {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	w.cancel = cancel
	go m.reflect(ctx, w)
}

func (m *Manager) releaseLocked(k key, uid types.UID) {
	w, ok := m.watches[k]
	if !ok {
		return
	}
	delete(w.pods, uid)
	if len(w.pods) > 0 {
		return
	}
	if w.cancel != nil {
		w.cancel()
	}
	delete(m.watches, k)
}

// reflect lists and watches one object until ctx is cancelled; the
// reflector retries with back-off on its own.
func (m *Manager) reflect(ctx context.Context, w *objectWatch) {
	k := w.key
	selector := fields.OneTermEqualSelector("metadata.name", k.name).String()
	var lw *cache.ListWatch
	var expected runtime.Object
	switch k.kind {
	case KindSecret:
		api := m.client.CoreV1().Secrets(k.namespace)
		expected = &v1.Secret{}
		lw = &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				o.FieldSelector = selector
				return api.List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				o.FieldSelector = selector
				return api.Watch(ctx, o)
			},
		}
	default:
		api := m.client.CoreV1().ConfigMaps(k.namespace)
		expected = &v1.ConfigMap{}
		lw = &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				o.FieldSelector = selector
				return api.List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				o.FieldSelector = selector
				return api.Watch(ctx, o)
			},
		}
	}
	logger := klog.FromContext(ctx).WithValues("kind", k.kind, "object", klog.KRef(k.namespace, k.name))
	r := cache.NewReflectorWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, m.client), expected, w.store, cache.ReflectorOptions{
		Logger: &logger,
		Name:   fmt.Sprintf("object-%q/%q", k.namespace, k.name),
		// Fewer re-established watches for objects that rarely change.
		MinWatchTimeout: 30 * time.Minute,
	})
	logger.V(4).Info("Watching object")
	r.RunWithContext(ctx)
	logger.V(4).Info("Stopped watching object")
}

func containsKey(keys []key, k key) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}
