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

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
	"github.com/berth-dev/berth/internal/source"
	"github.com/berth-dev/berth/internal/status"
)

// Runtime is what a pod worker needs from the container runtime.
type Runtime interface {
	GetPodStatus(ctx context.Context, uid types.UID, name, namespace string) (*container.PodStatus, error)
	SyncPod(ctx context.Context, pod *v1.Pod, st *container.PodStatus, actions plan.PodActions) container.SyncResult
	KillPod(ctx context.Context, pod *v1.Pod, st *container.PodStatus, gracePeriodOverride *int64) error
	RemovePod(ctx context.Context, st *container.PodStatus) error
	GarbageCollect(ctx context.Context, pod *v1.Pod, st *container.PodStatus) error
	// RuntimeName is the runtime's name as it reports it ("containerd"),
	// which prefixes container IDs in pod status; "" until it answered.
	RuntimeName() string
}

// StatusStore keeps the latest status of every pod.
type StatusStore interface {
	Set(uid types.UID, st v1.PodStatus) (changed bool)
	Get(uid types.UID) (v1.PodStatus, bool)
	Delete(uid types.UID)
}

// Volumes sets up a pod's volumes before its containers start and tears
// them down after its containers are gone.
type Volumes interface {
	SetUp(ctx context.Context, pod *v1.Pod) error
	TearDown(ctx context.Context, uid types.UID) error
}

// OrphanVolumes, if the Volumes implement it, removes the volume
// directories of pods for which keep is false.
type OrphanVolumes interface {
	CleanupOrphans(ctx context.Context, keep func(types.UID) bool) error
}

// Prober runs a pod's probes; the planner reads liveness and startup, the
// status computation readiness and startup.
type Prober interface {
	plan.Probes
	status.Probes
	// Sync starts and stops probe workers for the containers in st.
	Sync(pod *v1.Pod, st v1.PodStatus)
	// RemovePod stops every probe of a terminating pod.
	RemovePod(uid types.UID)
}

// Admitter decides whether the node can run a new pod, given the pods
// that hold its resources (PodSet.ActivePods).
type Admitter interface {
	Admit(pod *v1.Pod, active []*v1.Pod) admission.Result
}

// Observer is told every runtime state a worker read (the PLEG), so that it
// does not wake the worker again for a change the worker has already seen
// (a container it has just started).
type Observer interface {
	Observed(uid types.UID, st *container.PodStatus)
}

// Listener is told what happens in the pod set: the status syncer, the pod
// start tracker and the mirror pods follow it. Its methods are called from
// the workers' goroutines and must not block.
type Listener interface {
	// PodSeen: a source added or changed the pod (its API object moved).
	PodSeen(pod *v1.Pod)
	// StatusChanged: berth's status of the pod changed (status.Store has it).
	StatusChanged(pod *v1.Pod, st *v1.PodStatus)
	// PodTerminated: the pod's containers and sandbox are gone, or it never
	// had any (a parked pod being deleted). pod is nil for an orphan.
	PodTerminated(uid types.UID, pod *v1.Pod)
	// StaticPodsChanged: a snapshot of a static pod source arrived.
	StaticPodsChanged()
}

// Source is one pod source: Run sends full snapshots of its pods until
// ctx ends.
type Source struct {
	Name string
	Run  func(ctx context.Context, out chan<- []*v1.Pod)
}

// Options configures Workers.
type Options struct {
	// Pods is the pod set the workers keep; required.
	Pods    *PodSet
	Sources []Source
	Runtime Runtime
	Status  StatusStore
	// Volumes may be nil: pods then get no volumes set up.
	Volumes Volumes
	// Prober may be nil: containers are then ready once running.
	Prober Prober
	// Admitter may be nil (standalone): every pod is admitted.
	Admitter Admitter
	Recorder record.EventRecorder
	// Listener, Observer and Wakeups may be nil.
	Listener Listener
	Observer Observer
	Wakeups  *Wakeups
	// NodeIPs are reported as hostIP(s), and as podIP(s) of hostNetwork pods.
	NodeIPs []string
	// ResyncPeriod: every pod is synced at least this often (syncFrequency).
	ResyncPeriod time.Duration
	// RetryPeriod: first delay before a sync that failed on a runtime error
	// is retried; it doubles up to ResyncPeriod.
	RetryPeriod time.Duration
	// OrphanCleanupPeriod: how often volume directories of pods that
	// neither a source nor the runtime knows are removed (default 10 s).
	OrphanCleanupPeriod time.Duration
	Clock               clock.Clock
}

// Workers owns the per-pod workers and the pod set they keep. All methods
// are safe for concurrent use.
type Workers struct {
	opts Options
	pods *PodSet

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
	return &Workers{opts: opts, pods: opts.Pods, workers: map[types.UID]*worker{}, started: make(chan struct{}),
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

type snapshot struct {
	source string
	pods   []*v1.Pod
}

// runSources applies the snapshots of every source, one at a time, until
// ctx ends.
func (w *Workers) runSources(ctx context.Context) {
	logger := klog.FromContext(ctx)
	names := make([]string, 0, len(w.opts.Sources))
	updates := make(chan snapshot)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, src := range w.opts.Sources {
		names = append(names, src.Name)
		out := make(chan []*v1.Pod)
		wg.Go(func() { src.Run(ctx, out) })
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case pods := <-out:
					select {
					case updates <- snapshot{source: src.Name, pods: pods}:
					case <-ctx.Done():
						return
					}
				}
			}
		})
	}
	if len(names) == 0 {
		logger.Info("No pod source: berth only cleans up pods it finds in the runtime")
		w.sourcesReady.Store(true)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-updates:
			w.setSource(logger, u.source, u.pods)
			if !w.sourcesReady.Load() && w.pods.merger.SeenAllSources(names...) {
				w.sourcesReady.Store(true)
			}
		case <-w.released:
			w.startWaiting(logger)
		}
	}
}

// setSource takes a source's snapshot into the pod set and acts on what
// changed.
func (w *Workers) setSource(logger klog.Logger, name string, pods []*v1.Pod) {
	w.apply(logger, w.pods.merger.Set(name, pods))
	if name != source.SourceAPI {
		w.opts.Listener.StaticPodsChanged()
	}
}

// runWakeups hands wake-ups and runtime snapshots to the workers.
func (w *Workers) runWakeups(ctx context.Context) {
	q := w.opts.Wakeups
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.ready:
			q.drain(w.wake, w.wakeAll, func(pods map[types.UID]*container.PodStatus) { w.relisted(ctx, pods) })
		}
	}
}

// relisted kills the runtime's pods that no source wants, once every
// source has spoken (before, they may belong to one that has not).
func (w *Workers) relisted(ctx context.Context, pods map[types.UID]*container.PodStatus) {
	w.runtimePods.Store(&pods)
	if !w.sourcesReady.Load() {
		return
	}
	for uid, st := range pods {
		if !w.pods.Admitted(uid) {
			klog.FromContext(ctx).Info("Removing pod that no source wants", "pod", klog.KRef(st.Namespace, st.Name), "podUID", uid)
			w.killOrphan(st)
		}
	}
}

// runOrphanCleanup removes what pods left on disk once they are gone:
// after a restart, pods deleted while berth was down leave volume
// directories.
func (w *Workers) runOrphanCleanup(ctx context.Context) {
	cleaner, ok := w.opts.Volumes.(OrphanVolumes)
	if !ok {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.opts.Clock.After(w.opts.OrphanCleanupPeriod):
		}
		p := w.runtimePods.Load()
		if p == nil || !w.sourcesReady.Load() {
			continue
		}
		inRuntime := *p
		keep := func(uid types.UID) bool {
			_, ok := inRuntime[uid]
			return ok || w.pods.Admitted(uid)
		}
		if err := cleaner.CleanupOrphans(ctx, keep); err != nil {
			klog.FromContext(ctx).Error(err, "Cleaning up the volumes of removed pods failed; will retry")
		}
	}
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
