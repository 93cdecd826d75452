package allocation

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Manager holds the allocated and actuated resources of the node's pods
// and their resize conditions. It is safe for concurrent use.
type Manager struct {
	clock clock.Clock

	mu         sync.Mutex
	allocated  *store
	actuated   *store
	conditions map[types.UID]resizeConditions
	// pending are the pods whose resize waits (Deferred), in the order
	// they are retried.
	pending []types.UID

	// kick wakes Run: a checkpoint has changes to write.
	kick chan struct{}
}

// resizeConditions are a pod's PodResizePending and PodResizeInProgress.
type resizeConditions struct {
	pending, inProgress *v1.PodCondition
}

// New opens (or starts) the checkpoints in dir; "" keeps them in memory
// only (tests).
func New(dir string, clk clock.Clock) (*Manager, error) {
	allocated, err := openStore(dir, AllocatedFile)
	if err != nil {
		return nil, fmt.Errorf("allocated resources checkpoint: %w", err)
	}
	actuated, err := openStore(dir, ActuatedFile)
	if err != nil {
		return nil, fmt.Errorf("actuated resources checkpoint: %w", err)
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Manager{clock: clk, allocated: allocated, actuated: actuated, conditions: map[types.UID]resizeConditions{},
		kick: make(chan struct{}, 1)}, nil
}

// Run writes the checkpoints in the background as they change, and once
// more when ctx ends. A pod's start never waits for the disk (an fsync
// costs ~10 ms on a VM's disk): what a crash of berth can lose here is
// what the next sync recomputes anyway — a new pod is admitted again with
// its spec, and a container without an actuated record is left as it runs
// (no resize is attempted until it is recorded again). Accepting a resize
// (SetAllocated) is the one record written before it is acted on.
func (m *Manager) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	for {
		select {
		case <-ctx.Done():
			if err := m.Flush(); err != nil {
				logger.Error(err, "Failed to write the resource allocation checkpoints at shutdown")
			}
			return
		case <-m.kick:
		}
		if err := m.Flush(); err != nil {
			logger.Error(err, "Failed to write the resource allocation checkpoints; retrying in 1s (check the root directory's file system)")
			select {
			case <-ctx.Done():
			case <-m.clock.After(time.Second):
				m.changed()
			}
		}
	}
}

// changed wakes Run.
func (m *Manager) changed() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Allocated returns pod with its containers' resources replaced by those
// allocated to it, and whether anything differed (a resize is wanted). A
// pod without an allocation is returned as it is. pod is not modified.
func (m *Manager) Allocated(pod *v1.Pod) (*v1.Pod, bool) {
	m.mu.Lock()
	info, ok := m.allocated.entries[pod.UID]
	m.mu.Unlock()
	if !ok {
		return pod, false
	}
	return FromAllocation(pod, info)
}

// HasAllocation reports whether pod uid has been admitted with resources.
func (m *Manager) HasAllocation(uid types.UID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.allocated.entries[uid]
	return ok
}

// SetAllocated records pod's resources as allocated to it (an accepted
// resize), and writes the checkpoints before it returns.
func (m *Manager) SetAllocated(pod *v1.Pod) error {
	m.Allocate(pod)
	return m.Flush()
}

// Allocate records pod's resources as allocated to it (admission); Run
// writes the checkpoint.
func (m *Manager) Allocate(pod *v1.Pod) {
	info := ResourceInfoForPod(pod)
	m.mu.Lock()
	m.allocated.entries[pod.UID] = info
	m.allocated.version++
	m.mu.Unlock()
	m.changed()
}

// Flush writes what changed since the last write, if anything; concurrent
// calls share one write.
func (m *Manager) Flush() error {
	return joinErr(m.allocated.persist(&m.mu), m.actuated.persist(&m.mu))
}

// Actuated returns the resources last applied to a container of pod uid.
func (m *Manager) Actuated(uid types.UID, name string) (v1.ResourceRequirements, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.actuated.entries[uid].ContainerResources[name]
	return r, ok
}

// SetActuated records the resources just applied to a container (created
// with them, or updated in place); Run writes the checkpoint.
func (m *Manager) SetActuated(uid types.UID, name string, r v1.ResourceRequirements) error {
	m.mu.Lock()
	info := m.actuated.entries[uid]
	if old, ok := info.ContainerResources[name]; ok && apiequality.Semantic.DeepEqual(old, r) {
		m.mu.Unlock()
		return nil
	}
	cr := make(map[string]v1.ResourceRequirements, len(info.ContainerResources)+1)
	for k, v := range info.ContainerResources {
		cr[k] = v
	}
	cr[name] = *r.DeepCopy()
	info.ContainerResources = cr
	m.actuated.entries[uid] = info
	m.actuated.version++
	m.mu.Unlock()
	m.changed()
	return nil
}

// ActuatedPodLevel returns the pod-level resources (spec.resources) last
// applied to the cgroup of pod uid.
func (m *Manager) ActuatedPodLevel(uid types.UID) (*v1.ResourceRequirements, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.actuated.entries[uid].PodLevelResources
	if r == nil {
		return nil, false
	}
	return r.DeepCopy(), true
}

// SetActuatedPodLevel records the pod-level resources just applied to the
// pod's cgroup (created with them, or resized in place); Run writes the
// checkpoint.
func (m *Manager) SetActuatedPodLevel(uid types.UID, r *v1.ResourceRequirements) {
	m.mu.Lock()
	info := m.actuated.entries[uid]
	if apiequality.Semantic.DeepEqual(info.PodLevelResources, r) {
		m.mu.Unlock()
		return
	}
	info.PodLevelResources = r.DeepCopy()
	m.actuated.entries[uid] = info
	m.actuated.version++
	m.mu.Unlock()
	m.changed()
}

// RemovePod forgets a pod whose containers are gone; Run writes the
// checkpoints.
func (m *Manager) RemovePod(uid types.UID) {
	m.mu.Lock()
	delete(m.conditions, uid)
	m.pending = slices.DeleteFunc(m.pending, func(u types.UID) bool { return u == uid })
	changed := false
	for _, s := range []*store{m.allocated, m.actuated} {
		if _, ok := s.entries[uid]; ok {
			delete(s.entries, uid)
			s.version++
			changed = true
		}
	}
	m.mu.Unlock()
	if changed {
		m.changed()
	}
}

// RemoveOrphans forgets every pod for which keep is false (pods gone
// while berth was down).
func (m *Manager) RemoveOrphans(keep func(types.UID) bool) {
	m.mu.Lock()
	var gone []types.UID
	for _, s := range []*store{m.allocated, m.actuated} {
		for uid := range s.entries {
			if !keep(uid) {
				gone = append(gone, uid)
			}
		}
	}
	m.mu.Unlock()
	for _, uid := range gone {
		m.RemovePod(uid)
	}
}

func joinErr(errs ...error) error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return fmt.Errorf("%v", out)
}

// Conditions returns the pod's resize conditions: PodResizePending, then
// PodResizeInProgress, those that are set.
func (m *Manager) Conditions(uid types.UID) []v1.PodCondition {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.conditions[uid]
	var out []v1.PodCondition
	for _, p := range []*v1.PodCondition{c.pending, c.inProgress} {
		if p != nil {
			out = append(out, *p)
		}
	}
	return out
}

// PendingReason is the reason of the pod's PodResizePending condition, ""
// without one.
func (m *Manager) PendingReason(uid types.UID) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.conditions[uid].pending; p != nil {
		return p.Reason
	}
	return ""
}

// SetPending sets PodResizePending: reason Infeasible, or Deferred for any
// other reason (upstream's rule). It reports whether the reason or the
// generation changed (an event is due).
func (m *Manager) SetPending(uid types.UID, reason, message string, generation int64) bool {
	if reason != v1.PodReasonInfeasible {
		reason = v1.PodReasonDeferred
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.conditions[uid]
	old := c.pending
	c.pending = resizeCondition(m.clock, v1.PodResizePending, old, reason, message, generation)
	m.conditions[uid] = c
	return old == nil || old.Reason != reason || old.ObservedGeneration != generation
}

// ClearPending removes PodResizePending.
func (m *Manager) ClearPending(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.conditions[uid]; ok && c.pending != nil {
		c.pending = nil
		m.conditions[uid] = c
	}
}

// SetInProgress sets PodResizeInProgress. An existing condition keeps its
// generation, and its reason and message unless new ones are given; to
// move the generation, clear it first (upstream's rule). It reports the
// condition's generation and whether the condition changed.
func (m *Manager) SetInProgress(uid types.UID, reason, message string, generation int64) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.conditions[uid]
	old := c.inProgress
	if old != nil {
		if reason == "" && message == "" {
			reason, message = old.Reason, old.Message
		}
		generation = old.ObservedGeneration
	}
	c.inProgress = resizeCondition(m.clock, v1.PodResizeInProgress, old, reason, message, generation)
	m.conditions[uid] = c
	changed := old == nil || old.Reason != reason || old.Message != message
	return generation, changed
}

// ClearInProgress removes PodResizeInProgress; it returns the removed
// condition's generation and whether there was one.
func (m *Manager) ClearInProgress(uid types.UID) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.conditions[uid]
	if !ok || c.inProgress == nil {
		return 0, false
	}
	gen := c.inProgress.ObservedGeneration
	c.inProgress = nil
	m.conditions[uid] = c
	return gen, true
}

// resizeCondition is upstream's updatedPodResizeCondition; the probe time
// is kept while the condition stays the same, so that an unchanged
// condition does not rewrite the pod's status at every sync.
func resizeCondition(clk clock.Clock, t v1.PodConditionType, old *v1.PodCondition, reason, message string, generation int64) *v1.PodCondition {
	now := metav1.NewTime(clk.Now())
	c := &v1.PodCondition{
		Type:               t,
		Status:             v1.ConditionTrue,
		LastProbeTime:      now,
		LastTransitionTime: now,
		ObservedGeneration: generation,
		Reason:             reason,
		Message:            message,
	}
	if old != nil && old.Reason == reason {
		c.LastTransitionTime = old.LastTransitionTime
		if old.Message == message && old.ObservedGeneration == generation {
			c.LastProbeTime = old.LastProbeTime
		}
	}
	return c
}

// AddPending queues pod uid's resize for retries (Deferred).
func (m *Manager) AddPending(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.pending, uid) {
		m.pending = append(m.pending, uid)
	}
}

// TakePending returns the queued resizes and empties the queue; the
// caller queues again those still deferred.
func (m *Manager) TakePending() []types.UID {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pending
	m.pending = nil
	return p
}
