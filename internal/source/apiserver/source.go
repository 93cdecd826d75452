// Package apiserver is berth's API server pod source (upstream's
// config/apiserver.go): the pods the scheduler has bound to this node,
// watched through a client-go informer and turned into full snapshots.
//
// Mirror pods (the API's copies of static pods) are never part of a
// snapshot: they must not run. MirrorPods lists them for whoever keeps them
// in line with the static pods, and OnMirrorChange says when they changed.
//
// An API server outage never shows as missing pods. The informer keeps its
// store across lost connections and re-lists on its own; only a successful
// list or watch event changes the store, and the first snapshot is sent only
// once the initial list is complete. Until the API answers again, berth
// keeps running what it last knew.
package apiserver

import (
	"context"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/source"
)

const (
	// quietPeriod is how long the source waits after a change for the
	// next one before sending: enough to gather the events of one burst
	// (100 pods created at once arrive within a few milliseconds), short
	// enough not to delay a single pod.
	quietPeriod = 2 * time.Millisecond
	// maxDelay bounds how long a steady stream of changes can hold a
	// snapshot back.
	maxDelay = 10 * time.Millisecond
)

// Options configures a Source.
type Options struct {
	// Client talks to the API server.
	Client kubernetes.Interface
	// NodeName selects the pods bound to this node (spec.nodeName).
	NodeName string
	// OnMirrorChange, if set, is called whenever a mirror pod bound to this
	// node is added, deleted, or changed other than in its status (also
	// for those of the initial list). It runs on the informer's goroutine
	// and must return quickly.
	OnMirrorChange func()
	// Logger; if unset, Run takes the logger from its context.
	Logger klog.Logger
	// Now stamps when a pod was first seen; nil means time.Now.
	Now func() time.Time
}

// Source watches the pods bound to this node. Create it with New and call
// Run once; MirrorPods and Pod may be called at any time, concurrently.
type Source struct {
	opts     Options
	informer cache.SharedIndexInformer
	// changed holds one pending wake-up for Run: a pod that belongs in
	// the snapshots was added, changed or deleted.
	changed chan struct{}

	// seen is when each API pod was first seen, by UID, with the pod it
	// was last stamped on. Owned by Run's goroutine.
	seen map[types.UID]stamped
}

// stamped is an API pod and its copy carrying AnnotationConfigSeen.
type stamped struct {
	from *v1.Pod
	pod  *v1.Pod
}

// New returns a Source for opts. Nothing is contacted until Run.
func New(opts Options) *Source {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	selector := fields.OneTermEqualSelector("spec.nodeName", opts.NodeName).String()
	informer := coreinformers.NewFilteredPodInformer(opts.Client, metav1.NamespaceAll, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.FieldSelector = selector })
	// berth never reads managed fields; dropping them halves the memory a
	// pod takes in the store.
	_ = informer.SetTransform(func(obj any) (any, error) {
		if pod, ok := obj.(*v1.Pod); ok {
			pod.ManagedFields = nil
		}
		return obj, nil
	})
	return &Source{
		opts:     opts,
		informer: informer,
		changed:  make(chan struct{}, 1),
		seen:     map[types.UID]stamped{},
	}
}

// Run sends a full snapshot of the pods bound to this node, mirror pods
// excluded, once the informer has listed them all (even if there are none,
// so that the source can be marked seen), and then after each change until
// ctx is cancelled. Changes that come close together are sent as one
// snapshot. Each snapshot is a new slice sorted by namespace and name; the
// pods in it are shared and must be treated as read-only. Status-only
// updates of a pod send no snapshot (the snapshot's pods may then carry an
// older status: read the current object with Pod).
func (s *Source) Run(ctx context.Context, out chan<- []*v1.Pod) {
	logger := s.opts.Logger
	if logger.GetSink() == nil {
		logger = klog.FromContext(ctx)
	}
	logger = logger.WithName("api-pods")

	reg, err := s.informer.AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onEvent(nil, obj) },
		UpdateFunc: s.onEvent,
		DeleteFunc: func(obj any) { s.onEvent(obj, nil) },
	}, cache.HandlerOptions{Logger: &logger})
	if err != nil {
		// Only a stopped informer refuses a handler: Run was called twice.
		logger.Error(err, "Cannot watch the API server's pods")
		return
	}
	informerDone := make(chan struct{})
	go func() {
		defer close(informerDone)
		s.informer.RunWithContext(klog.NewContext(ctx, logger))
	}()
	defer func() { <-informerDone }()

	logger.V(1).Info("Waiting for the pods bound to this node", "node", s.opts.NodeName)
	select {
	case <-reg.HasSyncedChecker().Done():
	case <-ctx.Done():
		return
	}
	// The initial list's events are all in the store now.
	select {
	case <-s.changed:
	default:
	}

	pods := s.snapshot()
	logger.V(1).Info("Listed the pods bound to this node", "count", len(pods))
	var last []*v1.Pod
	first := true
	for {
		if first || !slices.Equal(pods, last) {
			var ok bool
			if pods, ok = s.send(ctx, out, pods); !ok {
				return
			}
			last, first = pods, false
		}
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		}
		if !s.settle(ctx) {
			return
		}
		pods = s.snapshot()
	}
}

// send delivers pods to out. If the pods change while out is not ready,
// the snapshot waiting to go is replaced, so that the receiver never gets a
// stale one. It returns the snapshot sent, and false if ctx ended first.
func (s *Source) send(ctx context.Context, out chan<- []*v1.Pod, pods []*v1.Pod) ([]*v1.Pod, bool) {
	for {
		// A change already pending wins over a receiver already waiting
		// (select alone would pick between them at random).
		select {
		case <-s.changed:
			if !s.settle(ctx) {
				return nil, false
			}
			pods = s.snapshot()
			continue
		default:
		}
		select {
		case out <- pods:
			return pods, true
		case <-s.changed:
			if !s.settle(ctx) {
				return nil, false
			}
			pods = s.snapshot()
		case <-ctx.Done():
			return nil, false
		}
	}
}

// settle waits, after a change, until no other change has come for
// quietPeriod, or maxDelay has passed. It returns false if ctx ended.
func (s *Source) settle(ctx context.Context) bool {
	quiet := time.NewTimer(quietPeriod)
	defer quiet.Stop()
	deadline := time.NewTimer(maxDelay)
	defer deadline.Stop()
	for {
		select {
		case <-s.changed:
			quiet.Reset(quietPeriod)
		case <-quiet.C:
			return true
		case <-deadline.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
}

// onEvent is the informer's handler: old is nil for an add, new for a
// delete.
func (s *Source) onEvent(old, new any) {
	oldPod, newPod := asPod(old), asPod(new)
	// A status-only update changes nothing berth acts on; berth's own
	// status patches would otherwise each wake the source (and, for mirror
	// pods, the mirror sync).
	if oldPod != nil && newPod != nil && !source.Changed(oldPod, newPod) {
		return
	}
	var mirror, regular bool
	for _, p := range []*v1.Pod{oldPod, newPod} {
		switch {
		case p == nil:
		case isMirror(p):
			mirror = true
		default:
			regular = true
		}
	}
	if mirror && s.opts.OnMirrorChange != nil {
		s.opts.OnMirrorChange()
	}
	if regular {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
}

// asPod unwraps an informer object, including the tombstone of a delete
// the informer missed while disconnected.
func asPod(obj any) *v1.Pod {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, _ := obj.(*v1.Pod)
	return pod
}

func isMirror(pod *v1.Pod) bool {
	_, ok := pod.Annotations[source.AnnotationConfigMirror]
	return ok
}

// snapshot returns the pods to run: those of the store bound to this node
// (the API filters by node already; this guards against a server or fake
// that does not), without mirror pods, each stamped with when berth first
// saw it.
func (s *Source) snapshot() []*v1.Pod {
	pods := []*v1.Pod{}
	next := make(map[types.UID]stamped, len(s.seen))
	for _, obj := range s.informer.GetStore().List() {
		pod, ok := obj.(*v1.Pod)
		if !ok || pod.Spec.NodeName != s.opts.NodeName || isMirror(pod) {
			continue
		}
		st, ok := s.seen[pod.UID]
		switch {
		case ok && st.from == pod:
		case ok:
			st = stamped{from: pod, pod: withSeen(pod, st.pod.Annotations[source.AnnotationConfigSeen])}
		default:
			st = stamped{from: pod, pod: withSeen(pod, s.opts.Now().Format(source.SeenTimeLayout))}
		}
		next[pod.UID] = st
		pods = append(pods, st.pod)
	}
	s.seen = next
	sortPods(pods)
	return pods
}

// withSeen returns a shallow copy of pod with AnnotationConfigSeen set: the
// store's object is shared with the informer and must not be written.
func withSeen(pod *v1.Pod, seen string) *v1.Pod {
	p := *pod
	p.Annotations = make(map[string]string, len(pod.Annotations)+1)
	for k, v := range pod.Annotations {
		p.Annotations[k] = v
	}
	p.Annotations[source.AnnotationConfigSeen] = seen
	return &p
}

func sortPods(pods []*v1.Pod) {
	slices.SortFunc(pods, func(a, b *v1.Pod) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// MirrorPods returns the mirror pods bound to this node, sorted by
// namespace and name. The pods are the informer's and must be treated as
// read-only. Before Run has listed the pods the list is empty.
func (s *Source) MirrorPods() []*v1.Pod {
	var pods []*v1.Pod
	for _, obj := range s.informer.GetStore().List() {
		if pod, ok := obj.(*v1.Pod); ok && pod.Spec.NodeName == s.opts.NodeName && isMirror(pod) {
			pods = append(pods, pod)
		}
	}
	sortPods(pods)
	return pods
}

// Pod returns the current API object of a pod bound to this node, mirror
// pods included, as last seen by the informer (with its resourceVersion and
// status, for the preconditions of a status patch). It must be treated as
// read-only.
func (s *Source) Pod(namespace, name string) (*v1.Pod, bool) {
	obj, ok, err := s.informer.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	pod, ok := obj.(*v1.Pod)
	if !ok || pod.Spec.NodeName != s.opts.NodeName {
		return nil, false
	}
	return pod, true
}
