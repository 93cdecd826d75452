package apistatus

import (
	"context"
	"errors"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// PodGetter returns the pods berth runs.
type PodGetter interface {
	// Desired returns the pod spec berth runs for uid (API or static); false if unknown.
	Desired(uid types.UID) (*v1.Pod, bool)
}

// APIPods reads the API server's pods bound to this node (an informer cache).
type APIPods interface {
	// Pod returns the current API object (for static pods: their mirror pod) by namespace/name.
	Pod(namespace, name string) (*v1.Pod, bool)
}

// StatusGetter returns berth's latest status of a pod (status.Store).
type StatusGetter interface {
	Get(uid types.UID) (v1.PodStatus, bool)
}

// Options configure a Syncer. Client, Statuses, Desired and API are required.
type Options struct {
	Client   kubernetes.Interface
	Statuses StatusGetter
	Desired  PodGetter
	API      APIPods
	// Clock drives the resync period, condition transition times and, when
	// it has tickers (clock.WithTicker, as the real and fake clocks do),
	// retry back-off. Default: the real clock.
	Clock clock.Clock
	// Workers is how many pods are synced at once. Default 2.
	Workers int
	// ResyncPeriod is how often every known pod is compared with the API
	// again, which repairs a status someone else overwrote. Default 10 s
	// (upstream's status sync period).
	ResyncPeriod time.Duration
	// RateLimiter spaces the retries of one pod. Default: exponential,
	// 200 ms doubling to 30 s.
	RateLimiter workqueue.TypedRateLimiter[types.UID]
}

// Syncer is the one writer of pod status to the API server. It is keyed by
// the UID of the pod berth runs (for a static pod: the static pod's UID, not
// its mirror's). See doc.go for the rules it follows.
type Syncer struct {
	client   kubernetes.Interface
	statuses StatusGetter
	desired  PodGetter
	api      APIPods
	clock    clock.Clock
	workers  int
	resync   time.Duration
	queue    workqueue.TypedRateLimitingInterface[types.UID]

	mu sync.Mutex
	// known are the pods to compare again at every resync.
	known map[types.UID]struct{}
	// finished are the pods whose containers and sandbox are gone
	// (PodTerminated), by UID, with the pod as given.
	finished map[types.UID]*v1.Pod
	// written remembers, by pod, the API object the last patch returned and
	// the resource version it was made from: until the cache moves past
	// that version, the returned object is the newer view.
	written map[types.UID]written
	// down is set while the API server does not answer; logged once.
	down bool
	// failing holds the last error logged per pod, so each distinct failure
	// is logged once.
	failing map[types.UID]string
}

type written struct {
	fromVersion string
	pod         *v1.Pod
}

// New returns a Syncer; nothing is sent until Run.
func New(opts Options) *Syncer {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.ResyncPeriod <= 0 {
		opts.ResyncPeriod = 10 * time.Second
	}
	if opts.RateLimiter == nil {
		opts.RateLimiter = workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](200*time.Millisecond, 30*time.Second)
	}
	queueClock, ok := opts.Clock.(clock.WithTicker)
	if !ok {
		queueClock = clock.RealClock{}
	}
	return &Syncer{
		client:   opts.Client,
		statuses: opts.Statuses,
		desired:  opts.Desired,
		api:      opts.API,
		clock:    opts.Clock,
		workers:  opts.Workers,
		resync:   opts.ResyncPeriod,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(opts.RateLimiter,
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Clock: queueClock}),
		known:    make(map[types.UID]struct{}),
		finished: make(map[types.UID]*v1.Pod),
		written:  make(map[types.UID]written),
		failing:  make(map[types.UID]string),
	}
}

// Enqueue says the status of uid changed (status.Store's onChange), or that
// its API object did (the caller should call it on every update of a pod
// berth runs, and of a mirror pod, with the berth pod's UID): the pod is
// compared with the API and patched if they differ. It never blocks.
func (s *Syncer) Enqueue(uid types.UID) {
	s.mu.Lock()
	s.known[uid] = struct{}{}
	s.mu.Unlock()
	s.queue.Add(uid)
}

// PodTerminated says the pod's containers and sandbox are gone. Once its
// final status is in the API and the API object is being deleted
// (deletionTimestamp set), the Syncer deletes it for good: grace period 0,
// precondition on its UID. The pod may be asked to be deleted later; the
// Syncer remembers. Static pods are never deleted here: their mirror pods
// belong to internal/mirror.
func (s *Syncer) PodTerminated(pod *v1.Pod) {
	if isStatic(pod) {
		return
	}
	s.mu.Lock()
	s.finished[pod.UID] = pod
	s.known[pod.UID] = struct{}{}
	s.mu.Unlock()
	s.queue.Add(pod.UID)
}

// Run syncs queued pods until ctx ends, then waits for its workers.
func (s *Syncer) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	logger.Info("Syncing pod status to the API server", "workers", s.workers)
	var wg sync.WaitGroup
	for range s.workers {
		wg.Go(func() {
			for s.processNext(ctx) {
			}
		})
	}
	for {
		timer := s.clock.NewTimer(s.resync)
		select {
		case <-ctx.Done():
			timer.Stop()
			s.queue.ShutDown()
			wg.Wait()
			return
		case <-timer.C():
			s.resyncAll()
		}
	}
}

// resyncAll queues every known pod that is not waiting out a back-off (a
// retry is already due for those; queueing them now would skip it).
func (s *Syncer) resyncAll() {
	s.mu.Lock()
	uids := make([]types.UID, 0, len(s.known))
	for uid := range s.known {
		uids = append(uids, uid)
	}
	s.mu.Unlock()
	for _, uid := range uids {
		if s.queue.NumRequeues(uid) == 0 {
			s.queue.Add(uid)
		}
	}
}

// requeueAll queues every known pod, those waiting out a back-off too.
func (s *Syncer) requeueAll() {
	s.mu.Lock()
	uids := make([]types.UID, 0, len(s.known))
	for uid := range s.known {
		uids = append(uids, uid)
	}
	s.mu.Unlock()
	for _, uid := range uids {
		s.queue.Add(uid)
	}
}

// processNext syncs one pod; false once the queue is shut down.
func (s *Syncer) processNext(ctx context.Context) bool {
	uid, shutdown := s.queue.Get()
	if shutdown {
		return false
	}
	defer s.queue.Done(uid)
	logger := klog.FromContext(ctx).WithValues("podUID", uid)
	err := s.sync(klog.NewContext(ctx, logger), uid)
	switch {
	case err == nil:
		s.queue.Forget(uid)
		s.mu.Lock()
		delete(s.failing, uid)
		s.mu.Unlock()
	case ctx.Err() != nil:
		// Shutting down: nothing to report.
	case errors.Is(err, errWait):
		// Waiting for something that will come (a mirror pod): quietly.
		logger.V(4).Info("Pod status waits", "reason", err)
		s.queue.AddRateLimited(uid)
	default:
		s.report(logger, uid, err)
		s.queue.AddRateLimited(uid)
	}
	return true
}

// forget drops every trace of a pod berth no longer runs.
func (s *Syncer) forget(uid types.UID) {
	s.mu.Lock()
	delete(s.known, uid)
	delete(s.written, uid)
	delete(s.finished, uid)
	delete(s.failing, uid)
	s.mu.Unlock()
}

// finishedPod returns the pod given to PodTerminated, if any.
func (s *Syncer) finishedPod(uid types.UID) (*v1.Pod, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pod, ok := s.finished[uid]
	return pod, ok
}

func (s *Syncer) doneDeleting(uid types.UID) {
	s.mu.Lock()
	delete(s.finished, uid)
	s.mu.Unlock()
}

// latest returns the freshest view of the API object of pod uid: the
// cache's, unless berth's own last patch is newer than it.
func (s *Syncer) latest(uid types.UID, api *v1.Pod) *v1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.written[uid]
	if !ok {
		return api
	}
	if w.pod.UID == api.UID && w.fromVersion == api.ResourceVersion {
		return w.pod
	}
	// The cache has moved on (it holds our write or a later one), or the
	// object is another one.
	delete(s.written, uid)
	return api
}

// rememberWrite records the object a patch of from returned.
func (s *Syncer) rememberWrite(uid types.UID, from, result *v1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from.ResourceVersion == "" || result == nil || result.UID != from.UID {
		delete(s.written, uid)
		return
	}
	s.written[uid] = written{fromVersion: from.ResourceVersion, pod: result}
}
