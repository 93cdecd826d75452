package eviction

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/source"
	"github.com/berth-dev/berth/internal/status"
)

// Stats is what the manager reads from the stats collector: the latest
// sample as the Summary API, and the collector's housekeeping rounds, so
// that no second sampling loop runs.
type Stats interface {
	Summary(ctx context.Context, onlyCPUAndMemory bool) (*statsapi.Summary, error)
	// Sampled is signalled after every housekeeping round.
	Sampled() <-chan struct{}
	// Refresh asks for a round now (a memory threshold was crossed, or
	// node-level reclaim freed something).
	Refresh()
	// DedicatedImageFs reports whether the runtime's image file system is
	// another one than the node's (RootDir's); an error until sampled.
	DedicatedImageFs() (bool, error)
}

// Pods is the node's pod set as the manager needs it.
type Pods interface {
	// ActivePods are the admitted pods that hold resources.
	ActivePods() []*v1.Pod
	// Terminating reports whether the pod is already being stopped.
	Terminating(uid types.UID) (string, bool)
	// Admitted is false once the pod's containers and sandbox are gone.
	Admitted(uid types.UID) bool
}

// Evicter fails a pod for good with the given reason and message and
// kills it within grace (podworker.Workers). It returns false when the pod
// has no running worker to evict.
type Evicter interface {
	Evict(uid types.UID, grace *int64, ev status.Eviction) bool
	// SourcesReady is true once every pod source has delivered its first
	// snapshot and its pods were admitted.
	SourcesReady() bool
}

// ImageGC frees the image file system by removing unused images.
type ImageGC interface {
	DeleteUnusedImages(ctx context.Context) error
}

// ContainerGC removes every dead container and sandbox no pod needs.
type ContainerGC interface {
	DeleteAllUnusedContainers(ctx context.Context) error
}

// Options configures a Manager.
type Options struct {
	Config      Config
	Stats       Stats
	Pods        Pods
	ImageGC     ImageGC
	ContainerGC ContainerGC
	Recorder    record.EventRecorder
	// NodeRef is the object the EvictionThresholdMet events are about.
	NodeRef *v1.ObjectReference
	// MemoryCgroup is the root of the cgroup v1 memory hierarchy
	// (/sys/fs/cgroup/memory) and PodsCgroup the pods' cgroup under it
	// (/kubepods), for threshold notifications; empty disables them.
	MemoryCgroup, PodsCgroup string
	// OnEvicted, if set, is told the signal of each eviction (upstream's
	// kubelet_evictions counter).
	OnEvicted func(signal string)
	Clock     clock.WithTicker
}

// How long the manager waits for an evicted pod to be gone before the next
// round, and how often it looks (upstream's podCleanupTimeout and
// podCleanupPollFreq).
const (
	cleanupTimeout  = 30 * time.Second
	cleanupPollFreq = time.Second
	// immediateGracePeriod is the grace period of pods evicted for a hard
	// threshold or a local storage limit (upstream's
	// immediateEvictionGracePeriodSeconds).
	immediateGracePeriod int64 = 1
	// refreshTimeout bounds the wait for a requested housekeeping round.
	refreshTimeout = 30 * time.Second
	// minRefreshInterval spaces the rounds memory notifications ask for.
	minRefreshInterval = time.Second
)

// Manager watches the node's resources at every stats housekeeping round,
// reports the pressure conditions, reclaims node-level resources and evicts
// pods, one per round, as upstream's eviction manager.
type Manager struct {
	opts Options
	cfg  Config

	mu         sync.RWMutex
	conditions []v1.NodeConditionType

	// Owned by Run's goroutine.
	st        state
	dedicated *bool
	notifiers map[int]*thresholdNotifier
}

// New returns a Manager; Run starts it.
func New(opts Options) *Manager {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Recorder == nil {
		opts.Recorder = &record.FakeRecorder{}
	}
	return &Manager{opts: opts, cfg: opts.Config, notifiers: map[int]*thresholdNotifier{}}
}

// Conditions returns the node's pressure conditions now, in upstream's
// order (MemoryPressure, DiskPressure, PIDPressure).
func (m *Manager) Conditions() []v1.NodeConditionType {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.conditions)
}

// Run evaluates the thresholds after every housekeeping round until ctx
// ends, evicting through ev. A crossed memory threshold asks the collector
// for a round at once.
func (m *Manager) Run(ctx context.Context, ev Evicter) {
	logger := klog.FromContext(ctx).WithName("eviction")
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting the eviction manager", "thresholds", len(m.cfg.Thresholds), "localStorageCapacityIsolation", m.cfg.LocalStorageCapacityIsolation)
	crossed := make(chan struct{}, 1)
	defer m.stopNotifiers()
	var lastRefresh time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-crossed:
			// A usage going back and forth across the value must not
			// turn into back-to-back housekeeping rounds: at most one
			// forced round a second, the periodic ones go on anyway.
			if now := m.opts.Clock.Now(); now.Sub(lastRefresh) >= minRefreshInterval {
				lastRefresh = now
				logger.V(2).Info("A memory threshold was crossed; sampling now")
				m.opts.Stats.Refresh()
			}
			continue
		case <-m.opts.Stats.Sampled():
		}
		evicted := m.synchronize(ctx, ev, crossed)
		if len(evicted) > 0 {
			m.waitForCleanup(ctx, evicted)
		}
	}
}

// synchronize is one round: observe, decide, then reclaim or evict. It
// returns the pods it evicted.
func (m *Manager) synchronize(ctx context.Context, ev Evicter, crossed chan<- struct{}) []*v1.Pod {
	logger := klog.FromContext(ctx)
	if !ev.SourcesReady() {
		// Pods that ran before a restart are admitted again first, as
		// they were; pressure then evicts them by rank.
		return nil
	}
	summary, err := m.opts.Stats.Summary(ctx, false)
	if err != nil {
		logger.V(2).Info("No stats to evaluate eviction thresholds yet", "err", err)
		return nil
	}
	if m.dedicated == nil {
		d, err := m.opts.Stats.DedicatedImageFs()
		if err != nil {
			logger.V(2).Info("Cannot tell yet whether the image file system is the node's", "err", err)
		} else {
			m.dedicated = &d
			logger.Info("File systems", "dedicatedImageFs", d)
		}
	}
	dedicated := m.dedicated != nil && *m.dedicated
	obs := observe(summary)
	next, v := step(m.cfg, m.st, obs, m.opts.Clock.Now())
	m.st = next
	m.setConditions(logger, v.conditions)
	m.updateNotifiers(ctx, summary, crossed)

	stats := statsByUID(summary.Pods)
	candidates := m.candidates()
	if m.cfg.LocalStorageCapacityIsolation {
		var evicted []*v1.Pod
		for _, pod := range candidates {
			st, ok := stats(pod)
			if !ok {
				continue
			}
			if signal, msg := storageViolation(pod, st, dedicated); msg != "" {
				if m.evict(ctx, ev, pod, immediateGracePeriod, msg, nil, nil) {
					m.counted(signal)
					evicted = append(evicted, pod)
				}
			}
		}
		if len(evicted) > 0 {
			return evicted
		}
	}
	if len(v.act) == 0 {
		return nil
	}
	t := m.cfg.Thresholds[v.act[0]]
	res, _ := signalResource(t.Signal)
	logger.Info("Attempting to reclaim", "resourceName", res, "signal", t.Signal)
	m.opts.Recorder.Eventf(m.opts.NodeRef, v1.EventTypeWarning, "EvictionThresholdMet", "Attempting to reclaim %s", res)
	if m.reclaimNode(ctx, t.Signal, dedicated) {
		logger.Info("Able to reduce resource pressure without evicting pods", "resourceName", res)
		return nil
	}
	if len(candidates) == 0 {
		logger.Error(nil, "Eviction thresholds have been met, but no pods are active to evict")
		return nil
	}
	rankFor(t.Signal, candidates, stats, dedicated)
	logger.Info("Pods ranked for eviction", "pods", klog.KObjSlice(candidates))
	for _, pod := range candidates {
		grace := evictionGrace(t, m.cfg.MaxPodGracePeriodSeconds, pod)
		msg, ann := evictionMessage(res, pod, stats, m.cfg.Thresholds, v.act, obs)
		cond := &v1.PodCondition{
			Type:               v1.DisruptionTarget,
			ObservedGeneration: pod.Generation,
			Status:             v1.ConditionTrue,
			Reason:             v1.PodReasonTerminationByKubelet,
			Message:            msg,
		}
		if m.evict(ctx, ev, pod, grace, msg, ann, cond) {
			m.counted(string(t.Signal))
			return []*v1.Pod{pod}
		}
	}
	logger.Info("Unable to evict any pods from the node")
	return nil
}

// evictionGrace is the grace period of a pod evicted for t, as upstream:
// immediate for a hard threshold, else the pod's own bounded by
// evictionMaxPodGracePeriod. A negative maximum defers to the pod (the
// field's documented meaning; upstream's min would pass the negative on).
func evictionGrace(t Threshold, maxGrace int64, pod *v1.Pod) int64 {
	if t.hard() {
		return immediateGracePeriod
	}
	own := int64(v1.DefaultTerminationGracePeriodSeconds)
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		own = *g
	}
	if maxGrace < 0 {
		return own
	}
	if pod.Spec.TerminationGracePeriodSeconds == nil {
		return maxGrace
	}
	return min(maxGrace, own)
}

func (m *Manager) counted(signal string) {
	if m.opts.OnEvicted != nil {
		m.opts.OnEvicted(signal)
	}
}

// candidates are the pods that may be evicted: active and not already
// being stopped.
func (m *Manager) candidates() []*v1.Pod {
	var out []*v1.Pod
	for _, p := range m.opts.Pods.ActivePods() {
		if _, stopping := m.opts.Pods.Terminating(p.UID); !stopping {
			out = append(out, p)
		}
	}
	return out
}

func (m *Manager) setConditions(logger klog.Logger, conds []v1.NodeConditionType) {
	m.mu.Lock()
	old := m.conditions
	m.conditions = conds
	m.mu.Unlock()
	if slices.Equal(old, conds) {
		return
	}
	logger.Info("Node pressure conditions changed", "conditions", conds, "was", old)
	// The node events upstream's node status setters record when a
	// pressure condition turns.
	for _, e := range []struct {
		c       v1.NodeConditionType
		on, off string
	}{
		{v1.NodeMemoryPressure, "NodeHasInsufficientMemory", "NodeHasSufficientMemory"},
		{v1.NodeDiskPressure, "NodeHasDiskPressure", "NodeHasNoDiskPressure"},
		{v1.NodePIDPressure, "NodeHasInsufficientPID", "NodeHasSufficientPID"},
	} {
		was, is := slices.Contains(old, e.c), slices.Contains(conds, e.c)
		if was == is || m.opts.NodeRef == nil {
			continue
		}
		reason := e.off
		if is {
			reason = e.on
		}
		m.opts.Recorder.Eventf(m.opts.NodeRef, v1.EventTypeNormal, reason, "Node %s status is now: %s", m.opts.NodeRef.Name, reason)
	}
}

// evict fails pod with msg and kills it; critical pods (static, mirror,
// system priority) are never evicted.
func (m *Manager) evict(ctx context.Context, ev Evicter, pod *v1.Pod, grace int64, msg string, ann map[string]string, cond *v1.PodCondition) bool {
	logger := klog.FromContext(ctx)
	if source.IsCritical(pod) {
		logger.Error(nil, "Cannot evict a critical pod", "pod", klog.KObj(pod))
		return false
	}
	if !ev.Evict(pod.UID, &grace, status.Eviction{Reason: Reason, Message: msg, Condition: cond}) {
		return false
	}
	m.opts.Recorder.AnnotatedEventf(pod, ann, v1.EventTypeWarning, Reason, "%s", msg)
	logger.Info("Evicting pod", "pod", klog.KObj(pod), "podUID", pod.UID, "gracePeriod", grace, "message", msg)
	return true
}

// reclaimNode runs the node-level reclaim for the signal (dead containers,
// then unused images, for the file system that holds them) and reports
// whether a fresh sample then shows every threshold, with its minimum
// reclaim, satisfied.
func (m *Manager) reclaimNode(ctx context.Context, s Signal, dedicated bool) bool {
	logger := klog.FromContext(ctx)
	var funcs []func(context.Context) error
	switch s {
	case SignalNodeFsAvailable, SignalNodeFsInodesFree:
		if !dedicated {
			funcs = m.gcFuncs()
		}
	case SignalImageFsAvailable, SignalImageFsInodesFree:
		funcs = m.gcFuncs()
	}
	if len(funcs) == 0 {
		return false
	}
	for _, f := range funcs {
		if err := f(ctx); err != nil {
			logger.Info("Unexpected error when attempting to reduce resource pressure", "signal", s, "err", err)
		}
	}
	summary, err := m.freshSummary(ctx)
	if err != nil {
		logger.Error(err, "Failed to get summary stats after resource reclaim")
		return false
	}
	return len(thresholdsMet(m.cfg.Thresholds, allIndexes(len(m.cfg.Thresholds)), observe(summary), true)) == 0
}

func (m *Manager) gcFuncs() []func(context.Context) error {
	var out []func(context.Context) error
	if m.opts.ContainerGC != nil {
		out = append(out, m.opts.ContainerGC.DeleteAllUnusedContainers)
	}
	if m.opts.ImageGC != nil {
		out = append(out, m.opts.ImageGC.DeleteUnusedImages)
	}
	return out
}

// freshSummary asks the collector for a round and returns its Summary.
func (m *Manager) freshSummary(ctx context.Context) (*statsapi.Summary, error) {
	// A round that ended before the request would be stale: drop its signal.
	select {
	case <-m.opts.Stats.Sampled():
	default:
	}
	m.opts.Stats.Refresh()
	t := m.opts.Clock.NewTimer(refreshTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C():
		return nil, errors.New("no housekeeping round in time")
	case <-m.opts.Stats.Sampled():
	}
	return m.opts.Stats.Summary(ctx, false)
}

// waitForCleanup waits until the evicted pods are gone (containers and
// sandbox removed), at most cleanupTimeout, so that the next round sees
// what their eviction freed.
func (m *Manager) waitForCleanup(ctx context.Context, pods []*v1.Pod) {
	logger := klog.FromContext(ctx)
	timeout := m.opts.Clock.NewTimer(cleanupTimeout)
	defer timeout.Stop()
	tick := m.opts.Clock.NewTicker(cleanupPollFreq)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timeout.C():
			logger.Info("Timed out waiting for evicted pods to be cleaned up", "pods", klog.KObjSlice(pods))
			return
		case <-tick.C():
			if !slices.ContainsFunc(pods, func(p *v1.Pod) bool { return m.opts.Pods.Admitted(p.UID) }) {
				logger.Info("Evicted pods cleaned up", "pods", klog.KObjSlice(pods))
				return
			}
		}
	}
}
