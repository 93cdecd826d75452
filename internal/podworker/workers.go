package podworker

import (
	"context"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
	"github.com/berth-dev/berth/internal/status"
)

// Runtime is what a pod worker needs from the container runtime.
type Runtime interface {
	GetPodStatus(ctx context.Context, uid types.UID, name, namespace string) (*container.PodStatus, error)
	SyncPod(ctx context.Context, pod *v1.Pod, st *container.PodStatus, actions plan.PodActions) container.SyncResult
	KillPod(ctx context.Context, pod *v1.Pod, st *container.PodStatus, gracePeriodOverride *int64) error
	RemovePod(ctx context.Context, st *container.PodStatus) error
	GarbageCollect(ctx context.Context, pod *v1.Pod, st *container.PodStatus) error
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

// Options configures Workers.
type Options struct {
	Runtime Runtime
	Status  StatusStore
	// Volumes may be nil: pods then get no volumes set up.
	Volumes Volumes
	// Prober may be nil: containers are then ready once running.
	Prober Prober
	// RuntimeName prefixes container IDs in pod status ("containerd://...").
	RuntimeName string
	// NodeIPs are reported as hostIP(s), and as podIP(s) of hostNetwork pods.
	NodeIPs []string
	// ResyncPeriod: every pod is synced at least this often (syncFrequency).
	ResyncPeriod time.Duration
	// RetryPeriod: first delay before a sync that failed on a runtime error
	// is retried; it doubles up to ResyncPeriod.
	RetryPeriod time.Duration
	Clock       clock.Clock
	// OnTerminated, if set, is called after a pod's runtime state is removed,
	// with the last desired spec (nil for an orphan).
	OnTerminated func(uid types.UID, pod *v1.Pod)
	// OnObserved, if set, is called with every runtime state a worker
	// read, so that the PLEG does not wake the worker again for a change
	// it has already seen (a container it has just started).
	OnObserved func(uid types.UID, st *container.PodStatus)
}

// Workers owns the per-pod workers. All methods are safe for concurrent use.
type Workers struct {
	opts Options

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
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Workers{opts: opts, workers: map[types.UID]*worker{}, started: make(chan struct{})}
}

// Run lets workers run until ctx is cancelled, then waits for them to stop.
// Stopping berth does not stop pods: a cancelled worker just returns.
func (w *Workers) Run(ctx context.Context) {
	w.mu.Lock()
	w.ctx = ctx
	close(w.started)
	w.mu.Unlock()
	<-ctx.Done()
	w.wg.Wait()
}

// Update sets the desired spec of a pod, starting its worker if needed.
func (w *Workers) Update(pod *v1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wk := w.workerLocked(pod.UID, pod.Namespace, pod.Name)
	wk.setDesired(pod)
}

// Kill asks the pod's worker to terminate the pod and remove it from the
// runtime. gracePeriod overrides the spec's when not nil.
func (w *Workers) Kill(uid types.UID, gracePeriod *int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wk, ok := w.workers[uid]; ok {
		wk.setKill(gracePeriod)
	}
}

// Terminate kills a pod that is being deleted. Unlike Kill it also works
// for a pod without a worker (e.g. deleted while berth was down): its
// containers are stopped within the grace period before the pod counts as
// terminated, so OnTerminated never runs while they still run.
func (w *Workers) Terminate(pod *v1.Pod, gracePeriod *int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wk := w.workerLocked(pod.UID, pod.Namespace, pod.Name)
	wk.mu.Lock()
	if wk.pod == nil {
		wk.pod = pod
	}
	wk.mu.Unlock()
	wk.setKill(gracePeriod)
}

// KillOrphan terminates a pod that the runtime runs but no source wants.
func (w *Workers) KillOrphan(st *container.PodStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.workers[st.UID]; ok {
		return
	}
	wk := w.workerLocked(st.UID, st.Namespace, st.Name)
	wk.setKill(nil)
}

// Wake asks a pod's worker to sync now (its runtime state changed).
func (w *Workers) Wake(uid types.UID) {
	w.mu.Lock()
	wk, ok := w.workers[uid]
	w.mu.Unlock()
	if ok {
		wk.poke()
	}
}

// WakeAll asks every worker to sync now (the runtime is back after an outage).
func (w *Workers) WakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wk := range w.workers {
		wk.poke()
	}
}

// Known reports whether a worker exists for uid.
func (w *Workers) Known(uid types.UID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.workers[uid]
	return ok
}

// Pods returns the desired pods that are not being terminated, each with its
// latest status, sorted by namespace and name.
func (w *Workers) Pods() []*v1.Pod {
	w.mu.Lock()
	var pods []*v1.Pod
	for _, wk := range w.workers {
		if p := wk.desiredPod(); p != nil {
			pods = append(pods, p)
		}
	}
	w.mu.Unlock()
	for i, p := range pods {
		cp := p.DeepCopy()
		if st, ok := w.opts.Status.Get(p.UID); ok {
			cp.Status = st
		}
		pods[i] = cp
	}
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
	return pods
}

func (w *Workers) workerLocked(uid types.UID, namespace, name string) *worker {
	if wk, ok := w.workers[uid]; ok {
		return wk
	}
	wk := &worker{uid: uid, namespace: namespace, name: name, opts: &w.opts, wake: make(chan struct{}, 1), finish: w.finish}
	w.workers[uid] = wk
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		<-w.started
		ctx := klog.NewContext(w.ctx, klog.FromContext(w.ctx).WithValues("pod", klog.KRef(namespace, name), "podUID", uid))
		if wk.run(ctx) && w.opts.OnTerminated != nil {
			w.opts.OnTerminated(uid, wk.lastPod())
		}
	}()
	return wk
}

// finish removes a worker whose pod is terminated, unless the same UID was
// wanted again meanwhile; then the worker syncs it afresh.
func (w *Workers) finish(wk *worker) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wk.reset() {
		return false
	}
	delete(w.workers, wk.uid)
	return true
}
