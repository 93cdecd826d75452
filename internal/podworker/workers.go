package podworker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/allocation"
	"github.com/berth-dev/berth/internal/container"
)

// Workers owns the per-pod workers and the pod set they keep. All methods
// are safe for concurrent use.
type Workers struct {
	opts  Options
	pods  *PodSet
	alloc *allocation.Manager

	// sourcesReady turns true once every source has delivered its first
	// snapshot; only then may pods no source wants be removed.
	sourcesReady atomic.Bool
	// runtimePods is the runtime's latest relist, for the volume cleanup.
	runtimePods atomic.Pointer[map[types.UID]*container.PodStatus]

	// released is signalled when a pod has terminated, so that the sources
	// loop starts static pods that waited for its name.
	released chan struct{}

	mu      sync.Mutex
	ctx     context.Context // set by Run; workers started before Run wait for it
	started chan struct{}
	workers map[types.UID]*worker
	wg      sync.WaitGroup
}

// New returns Workers; no worker runs until Run is called.
func New(opts Options) *Workers {
	if opts.ResyncPeriod <= 0 {
		opts.ResyncPeriod = time.Minute
	}
	if opts.RetryPeriod <= 0 {
		opts.RetryPeriod = time.Second
	}
	if opts.OrphanCleanupPeriod <= 0 {
		opts.OrphanCleanupPeriod = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Listener == nil {
		opts.Listener = noListener{}
	}
	if opts.Recorder == nil {
		opts.Recorder = &record.FakeRecorder{}
	}
	if opts.Wakeups == nil {
		opts.Wakeups = NewWakeups()
	}
	alloc := opts.Allocation
	if alloc == nil {
		alloc, _ = allocation.New("", opts.Clock) // in memory: cannot fail
	}
	return &Workers{opts: opts, pods: opts.Pods, alloc: alloc, workers: map[types.UID]*worker{}, started: make(chan struct{}),
		released: make(chan struct{}, 1)}
}

// Run runs the sources and the workers until ctx is cancelled, then waits
// for them to stop. Stopping berth does not stop pods: a cancelled worker
// just returns.
func (w *Workers) Run(ctx context.Context) {
	w.mu.Lock()
	w.ctx = ctx
	close(w.started)
	w.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { w.runSources(ctx) })
	wg.Go(func() { w.runWakeups(ctx) })
	wg.Go(func() { w.runOrphanCleanup(ctx) })
	wg.Wait()
	w.wg.Wait()
}

// update sets the desired spec of an admitted pod, starting its worker if
// needed.
func (w *Workers) update(pod *v1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pods.admit(pod)
	wk := w.workerLocked(pod.UID, pod.Namespace, pod.Name)
	wk.setDesired(pod)
}

// kill asks the pod's worker to terminate the pod and remove it from the
// runtime. gracePeriod overrides the spec's when not nil.
func (w *Workers) kill(uid types.UID, gracePeriod *int64, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wk, ok := w.workers[uid]; ok {
		w.pods.terminate(uid, nil, gracePeriod, reason)
		wk.setKill(gracePeriod)
	}
}

// terminate kills a pod that is being deleted. Unlike kill it also works
// for a pod without a worker (e.g. deleted while berth was down): its
// containers are stopped within the grace period before the pod counts as
// terminated, so PodTerminated never comes while they still run.
func (w *Workers) terminate(pod *v1.Pod, gracePeriod *int64, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pods.terminate(pod.UID, pod, gracePeriod, reason)
	wk := w.workerLocked(pod.UID, pod.Namespace, pod.Name)
	wk.mu.Lock()
	if wk.pod == nil {
		wk.pod = pod
	}
	wk.mu.Unlock()
	wk.setKill(gracePeriod)
}

// killOrphan terminates a pod that the runtime runs but no source wants.
func (w *Workers) killOrphan(st *container.PodStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.workers[st.UID]; ok {
		return
	}
	w.pods.terminate(st.UID, nil, nil, reasonOrphan)
	wk := w.workerLocked(st.UID, st.Namespace, st.Name)
	wk.setKill(nil)
}

// wake asks a pod's worker to sync now (its runtime state changed).
func (w *Workers) wake(uid types.UID) {
	w.mu.Lock()
	wk, ok := w.workers[uid]
	w.mu.Unlock()
	if ok {
		wk.poke()
	}
}

// wakeAll asks every worker to sync now (the runtime is back after an outage).
func (w *Workers) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wk := range w.workers {
		wk.poke()
	}
}

func (w *Workers) workerLocked(uid types.UID, namespace, name string) *worker {
	if wk, ok := w.workers[uid]; ok {
		return wk
	}
	wk := &worker{uid: uid, namespace: namespace, name: name, opts: &w.opts, set: w, wake: make(chan struct{}, 1)}
	w.workers[uid] = wk
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		<-w.started
		ctx := klog.NewContext(w.ctx, klog.FromContext(w.ctx).WithValues("pod", klog.KRef(namespace, name), "podUID", uid))
		if wk.run(ctx) {
			w.opts.Listener.PodTerminated(uid, wk.lastPod())
		}
	}()
	return wk
}

// finish removes a worker whose pod is terminated, unless the same UID was
// wanted again meanwhile; then the worker syncs it afresh.
func (w *Workers) finish(wk *worker) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if pod := wk.reset(); pod != nil {
		w.opts.Status.Delete(wk.uid) // it starts afresh
		w.pods.revive(pod)
		return false
	}
	delete(w.workers, wk.uid)
	w.alloc.RemovePod(wk.uid)
	if !w.pods.finished(wk.uid) {
		w.opts.Status.Delete(wk.uid)
	}
	select {
	case w.released <- struct{}{}:
	default:
	}
	return true
}

type noListener struct{}

func (noListener) PodSeen(*v1.Pod)                      {}
func (noListener) StatusChanged(*v1.Pod, *v1.PodStatus) {}
func (noListener) PodTerminated(types.UID, *v1.Pod)     {}
func (noListener) StaticPodsChanged()                   {}
