package podworker

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/allocation"
	"github.com/berth-dev/berth/internal/cm"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/panics"
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

// Claims prepares a pod's dynamic resources (its DRA ResourceClaims) before
// its sandbox is created, and unprepares them once its containers are
// gone (by UID: an orphan has no spec). Prepare reports its own failures
// (a FailedPrepareDynamicResources event); the pod waits and is retried.
type Claims interface {
	Prepare(ctx context.Context, pod *v1.Pod) error
	Unprepare(ctx context.Context, uid types.UID) error
}

// OrphanClaims, if the Claims implement it, unprepares the claims of pods
// for which keep is false.
type OrphanClaims interface {
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

// ResizeAdmitter decides whether an admitted pod's new resources fit,
// given the other admitted pods at their allocated resources: Reason
// Infeasible when they never can, any other when not now.
type ResizeAdmitter interface {
	AdmitResize(pod *v1.Pod, others []*v1.Pod) admission.Result
}

// PodCgroups tells what berth sets on a pod's cgroup (cm.Manager), for
// the pod's status.resources; nil when it has no cgroup of berth's.
type PodCgroups interface {
	PodConfig(pod *v1.Pod) *cm.ResourceConfig
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
	// Complete, if set, says whether the source's snapshots are
	// complete yet. A source that may first send a provisional one (node
	// autonomy: the checkpointed pods while the API server cannot be
	// reached) counts as having spoken only once it returns true, so
	// that nothing it may still want is removed as an orphan.
	Complete func() bool
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
	// Claims may be nil: pods' resourceClaims are then not prepared.
	Claims Claims
	// Prober may be nil: containers are then ready once running.
	Prober Prober
	// Admitter may be nil (standalone): every pod is admitted.
	Admitter Admitter
	// ResizeAdmitter may be nil: every resize is allocated.
	ResizeAdmitter ResizeAdmitter
	// PodCgroups may be nil: status.resources then reports no cgroup
	// values.
	PodCgroups PodCgroups
	// Allocation keeps the pods' allocated and applied resources; nil
	// keeps them in memory.
	Allocation *allocation.Manager
	Recorder   record.EventRecorder
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
	// Panics counts the panics recovered in pod workers (a panic fails
	// that pod's step, retried with the back-off); may be nil.
	Panics panics.Counter
}
