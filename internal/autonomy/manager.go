package autonomy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/source"
)

// DefaultWait is how long berth waits at start-up for the API server to
// list the node's pods before it runs the checkpointed ones: long enough
// for an API server that is merely slow or a network that comes up a
// little after berth (a list normally takes well under a second), short
// enough that the node's workloads are back soon after a reboot. Starting
// offline too early costs little: the API's list, when it comes,
// reconciles the same pods (same UIDs) without duplicates.
const DefaultWait = 10 * time.Second

// retryPeriod is how soon a checkpoint that could not be written is tried
// again.
const retryPeriod = 10 * time.Second

// ObjectGetter reads the ConfigMaps and Secrets berth watches
// (objects.Manager); NotFound when one does not exist.
type ObjectGetter interface {
	GetConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error)
	GetSecret(ctx context.Context, namespace, name string) (*v1.Secret, error)
}

// ServiceLister reads the Service informer's cache (objects.Services).
type ServiceLister interface {
	HasSynced() bool
	List(namespace string) ([]*v1.Service, error)
}

// Options configures a Manager.
type Options struct {
	// Store is the checkpoint directory; required.
	Store *Store
	// Objects and Services read what the checkpoint records; Services
	// may be nil.
	Objects  ObjectGetter
	Services ServiceLister
	// Wait: how long to wait for the API's first list before running the
	// checkpointed pods; zero means DefaultWait.
	Wait  time.Duration
	Clock clock.Clock
}

// Manager keeps the checkpoint and serves it while the API server cannot
// be reached. Create it with New; run Run (the writer) and the pod source
// RunPods returns once each.
type Manager struct {
	opts  Options
	store *Store

	// complete: the API server has listed the pods at least once.
	complete atomic.Bool
	// offline: berth runs checkpointed pods and the API has not listed
	// yet. startedOffline stays true once it was.
	offline        atomic.Bool
	startedOffline atomic.Bool

	mu      sync.Mutex
	pending pending
	// listed holds the objects the watches have listed since berth
	// started: offline, those are read from the watches, not the
	// checkpoint (they are newer).
	listed map[objectKey]bool
	wake   chan struct{}
}

// pending is what the writer has yet to do.
type pending struct {
	snapshot []*v1.Pod // the API's latest list; nil: none new
	objects  map[objectKey]struct{}
	tokens   map[tokenKey]*authenticationv1.TokenRequest
	terminal map[types.UID]v1.PodPhase
	services bool
}

type tokenKey struct {
	uid    types.UID
	volume string
	source int
}

// New returns a Manager.
func New(opts Options) *Manager {
	if opts.Wait <= 0 {
		opts.Wait = DefaultWait
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Manager{opts: opts, store: opts.Store, wake: make(chan struct{}, 1), pending: newPending(), listed: map[objectKey]bool{}}
}

func newPending() pending {
	return pending{
		objects:  map[objectKey]struct{}{},
		tokens:   map[tokenKey]*authenticationv1.TokenRequest{},
		terminal: map[types.UID]v1.PodPhase{},
	}
}

// Complete reports whether the API server has listed the node's pods:
// until then the pods berth runs may be the checkpoint's, and nothing the
// API may still want is to be removed (podworker.Source.Complete).
func (m *Manager) Complete() bool { return m.complete.Load() }

// Offline reports whether berth runs checkpointed pods because the API
// server could not be reached, and has not listed since.
func (m *Manager) Offline() bool { return m.offline.Load() }

func (m *Manager) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) update(f func(p *pending)) {
	m.mu.Lock()
	f(&m.pending)
	m.mu.Unlock()
	m.signal()
}

// ObjectChanged is the objects manager's Subscriber: the ConfigMap or
// Secret is checkpointed again (or its checkpoint removed once it is gone).
// From now on it is read from the watch, even offline. Tell it before the
// volume manager, so that the volumes it rewrites show the new version.
func (m *Manager) ObjectChanged(kind, namespace, name string) {
	k := objectKey{kind, namespace, name}
	m.update(func(p *pending) {
		p.objects[k] = struct{}{}
		m.listed[k] = true
	})
}

// fromWatch: the object is to be read from the watches.
func (m *Manager) fromWatch(k objectKey) bool {
	if !m.Offline() {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.listed[k]
}

// ServicesChanged says a Service changed (the Service informer's handler).
func (m *Manager) ServicesChanged() {
	m.update(func(p *pending) { p.services = true })
}

// StatusChanged records a terminal phase berth reached for a pod, so that
// a pod that completed does not run again after a restart offline. It
// does not block.
func (m *Manager) StatusChanged(pod *v1.Pod, st *v1.PodStatus) {
	if source.IsStatic(pod) || !isTerminal(st.Phase) || isTerminal(pod.Status.Phase) {
		return
	}
	m.update(func(p *pending) { p.terminal[pod.UID] = st.Phase })
}

// TokenIssued checkpoints a service-account token the volume manager
// obtained for a pod's projected volume source. It does not block.
func (m *Manager) TokenIssued(uid types.UID, volume string, source int, tr *authenticationv1.TokenRequest) {
	m.update(func(p *pending) { p.tokens[tokenKey{uid, volume, source}] = tr })
}

// RestoredToken returns the checkpointed token of a pod's volume source
// while berth is offline; online a new one is requested instead. The
// token is returned as it is, expired or not: nothing can refresh it.
func (m *Manager) RestoredToken(uid types.UID, volume string, source int) (*authenticationv1.TokenRequest, bool) {
	if !m.Offline() {
		return nil, false
	}
	tr, err := m.store.Token(uid, volume, source)
	if err != nil {
		return nil, false
	}
	return tr, true
}

// RunPods returns the API pod source with autonomy: it runs apiPods (the
// API server pod source, apiserver.Source.Run) and passes its snapshots
// on, checkpointing each; if apiPods has not listed within Wait, it first
// sends the checkpointed pods. onListed (may be nil) is called when the
// API lists the pods after berth started offline: their status can be
// written again.
func (m *Manager) RunPods(apiPods func(context.Context, chan<- []*v1.Pod), onListed func()) func(context.Context, chan<- []*v1.Pod) {
	return func(ctx context.Context, out chan<- []*v1.Pod) { m.runPods(ctx, apiPods, onListed, out) }
}

func (m *Manager) runPods(ctx context.Context, apiPods func(context.Context, chan<- []*v1.Pod), onListed func(), out chan<- []*v1.Pod) {
	logger := klog.FromContext(ctx).WithName("autonomy")
	in := make(chan []*v1.Pod)
	done := make(chan struct{})
	go func() { defer close(done); apiPods(ctx, in) }()
	defer func() { <-done }()

	timer := m.opts.Clock.NewTimer(m.opts.Wait)
	defer timer.Stop()
	wait := timer.C()
	for {
		var pods []*v1.Pod
		select {
		case <-ctx.Done():
			return
		case <-wait:
			wait = nil
			pods = m.offlinePods(logger)
			if len(pods) == 0 {
				continue
			}
		case pods = <-in:
			wait = nil
			m.update(func(p *pending) { p.snapshot = pods })
			if !m.complete.Swap(true) {
				if m.offline.Swap(false) {
					logger.Info("API server listed the node's pods; reconciling the pods run offline", "pods", len(pods))
					if onListed != nil {
						onListed()
					}
				}
			}
		}
		select {
		case out <- pods:
		case <-ctx.Done():
			return
		}
	}
}

// offlinePods turns berth offline and returns the checkpointed pods.
func (m *Manager) offlinePods(logger klog.Logger) []*v1.Pod {
	pods, errs := m.store.Pods()
	for _, err := range errs {
		logger.Error(err, "Checkpointed pod left out")
	}
	m.offline.Store(true)
	m.startedOffline.Store(true)
	logger.Info("API server has not listed the node's pods; running the checkpointed pods until it does",
		"waited", m.opts.Wait, "pods", len(pods))
	return stampSeen(pods, m.opts.Clock.Now())
}

// Run writes the checkpoint until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("autonomy")
	w, err := m.newWriter()
	if err != nil {
		// Without its state the writer cannot tell what to remove; the
		// pods run on, only the checkpoint falls behind.
		logger.Error(err, "Cannot read the node's checkpoint; pods are not checkpointed")
		return
	}
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-retry:
		}
		m.mu.Lock()
		p := m.pending
		m.pending = newPending()
		m.mu.Unlock()
		err := w.flush(ctx, p)
		switch {
		case err != nil:
			logger.Error(err, "Checkpoint not written; will retry", "retryIn", retryPeriod)
			retry = m.opts.Clock.After(retryPeriod)
		case w.servicesWaiting:
			// The Service informer's last event may come before it counts
			// as synced: look again shortly.
			retry = m.opts.Clock.After(time.Second)
		default:
			retry = nil
		}
	}
}

// writer is the state of Run: what the checkpoint holds.
type writer struct {
	m *Manager
	// current is the API's latest list; nil before the first.
	current  []*v1.Pod
	terminal map[types.UID]v1.PodPhase
	pods     map[types.UID]digest
	objects  map[objectKey]bool
	services map[string]string // namespace → servicesVersion written
	// dirty: the pods, objects or services may differ from current.
	dirty bool
	// servicesWaiting: the Service informer has not listed yet.
	servicesWaiting bool
	// queued work that had to wait (no list yet) or failed.
	objQueue map[objectKey]struct{}
	tokQueue map[tokenKey]*authenticationv1.TokenRequest
}

func (m *Manager) newWriter() (*writer, error) {
	w := &writer{m: m, terminal: map[types.UID]v1.PodPhase{}, pods: map[types.UID]digest{}, objects: map[objectKey]bool{},
		services: map[string]string{}, objQueue: map[objectKey]struct{}{}, tokQueue: map[tokenKey]*authenticationv1.TokenRequest{}}
	files, err := m.store.podFiles()
	if err != nil {
		return nil, err
	}
	for uid, b := range files {
		var sum digest
		if b != nil {
			sum = sha256.Sum256(b)
		}
		w.pods[uid] = sum
	}
	keys, err := m.store.objectKeys()
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		w.objects[k] = true
	}
	nss, err := m.store.serviceNamespaces()
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		w.services[ns] = "" // unknown: written again
	}
	return w, nil
}

// flush brings the checkpoint up to date with p and what is queued.
func (w *writer) flush(ctx context.Context, p pending) error {
	if p.snapshot != nil {
		w.current, w.dirty = p.snapshot, true
	}
	for uid, phase := range p.terminal {
		w.terminal[uid] = phase
		w.dirty = true
	}
	for k := range p.objects {
		w.objQueue[k] = struct{}{}
	}
	for k, tr := range p.tokens {
		w.tokQueue[k] = tr
	}
	if p.services {
		w.dirty = true
	}
	if w.current == nil {
		// Nothing is known of what the API wants yet: keep it all.
		return nil
	}
	var errs []error
	if w.dirty {
		w.dirty = false
		if err := w.writePods(); err != nil {
			errs = append(errs, err)
			w.dirty = true
		}
		if err := w.writeServices(); err != nil {
			errs = append(errs, err)
			w.dirty = true
		}
		if err := w.removeUnreferencedObjects(); err != nil {
			errs = append(errs, err)
			w.dirty = true
		}
	}
	errs = append(errs, w.writeObjects(ctx), w.writeTokens())
	return errors.Join(errs...)
}

func (w *writer) writePods() error {
	writes, removes, err := planPods(w.current, w.terminal, w.pods)
	if err != nil {
		return err
	}
	var errs []error
	for _, pw := range writes {
		if err := w.m.store.writePod(pw.uid, pw.data); err != nil {
			errs = append(errs, err)
			continue
		}
		w.pods[pw.uid] = pw.sum
	}
	for _, uid := range removes {
		if err := w.m.store.removePod(uid); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(w.pods, uid)
		delete(w.terminal, uid)
	}
	return errors.Join(errs...)
}

func (w *writer) writeServices() error {
	lister := w.m.opts.Services
	w.servicesWaiting = false
	if lister == nil {
		return nil
	}
	if !lister.HasSynced() {
		w.servicesWaiting, w.dirty = true, true
		return nil
	}
	want := serviceNamespaces(w.current)
	var errs []error
	for ns := range want {
		svcs, err := lister.List(ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		version := servicesVersion(svcs)
		if have, ok := w.services[ns]; ok && have == version && have != "" {
			continue
		}
		if err := w.m.store.writeServices(ns, svcs); err != nil {
			errs = append(errs, err)
			continue
		}
		w.services[ns] = version
	}
	for ns := range w.services {
		if !want[ns] {
			if err := w.m.store.removeServices(ns); err != nil {
				errs = append(errs, err)
				continue
			}
			delete(w.services, ns)
		}
	}
	return errors.Join(errs...)
}

func (w *writer) removeUnreferencedObjects() error {
	referenced := referencedObjects(w.current)
	var errs []error
	for k := range w.objects {
		if referenced[k] {
			continue
		}
		if err := w.m.store.removeObject(k); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(w.objects, k)
	}
	return errors.Join(errs...)
}

// writeObjects checkpoints the changed objects that a listed pod reads.
func (w *writer) writeObjects(ctx context.Context) error {
	if len(w.objQueue) == 0 {
		return nil
	}
	referenced := referencedObjects(w.current)
	var errs []error
	for k := range w.objQueue {
		if !referenced[k] {
			delete(w.objQueue, k)
			continue
		}
		if err := w.writeObject(ctx, k); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(w.objQueue, k)
	}
	return errors.Join(errs...)
}

func (w *writer) writeObject(ctx context.Context, k objectKey) error {
	var obj any
	var err error
	if k.kind == kindSecret {
		obj, err = w.m.opts.Objects.GetSecret(ctx, k.namespace, k.name)
	} else {
		obj, err = w.m.opts.Objects.GetConfigMap(ctx, k.namespace, k.name)
	}
	switch {
	case apierrors.IsNotFound(err):
		// Gone from the API: gone from the checkpoint, as a pod
		// started now would not find it either.
		if err := w.m.store.removeObject(k); err != nil {
			return err
		}
		delete(w.objects, k)
		return nil
	case err != nil:
		return fmt.Errorf("read %s %s/%s: %w", k.kind, k.namespace, k.name, err)
	}
	switch o := obj.(type) {
	case *v1.Secret:
		err = w.m.store.writeSecret(o)
	case *v1.ConfigMap:
		err = w.m.store.writeConfigMap(o)
	}
	if err != nil {
		return err
	}
	w.objects[k] = true
	return nil
}

// writeTokens checkpoints the tokens of listed pods.
func (w *writer) writeTokens() error {
	listed := make(map[types.UID]bool, len(w.current))
	for _, p := range w.current {
		listed[p.UID] = true
	}
	var errs []error
	for k, tr := range w.tokQueue {
		if listed[k.uid] {
			if err := w.m.store.writeToken(k.uid, k.volume, k.source, tr); err != nil {
				errs = append(errs, err)
				continue
			}
			if _, ok := w.pods[k.uid]; !ok {
				// The pod's checkpoint is written with it; until then
				// its directory must still be removed with the pod.
				w.pods[k.uid] = digest{}
			}
		}
		delete(w.tokQueue, k)
	}
	return errors.Join(errs...)
}
