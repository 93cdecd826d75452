package nodeshutdown

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/status"
)

// reconnectPeriod is how soon berth watches again after losing the bus
// (upstream's dbusReconnectPeriod).
const reconnectPeriod = time.Second

// Pods are the node's active pods (the pod set).
type Pods interface {
	ActivePods() []*v1.Pod
}

// Killer terminates a pod for good with a status (podworker.Workers).
type Killer interface {
	Evict(uid types.UID, grace *int64, ev status.Eviction) bool
}

// Options configures a Manager.
type Options struct {
	// Periods are the budgets by priority (Periods); empty: no manager.
	Periods []kubeletconfig.ShutdownGracePeriodByPodPriority
	// Connect reaches logind; ConnectLogind when nil.
	Connect func() (Logind, error)
	Pods    Pods
	// Recorder records the NodeShutdown events on NodeRef.
	Recorder record.EventRecorder
	NodeRef  *v1.ObjectReference
	Clock    clock.Clock
}

// Manager watches logind for the node's shutdown and terminates the pods
// then. Only Run's goroutine changes its state; ShuttingDown and
// PodTerminated may be called from any goroutine.
type Manager struct {
	opts         Options
	shuttingDown atomic.Bool

	mu      sync.Mutex
	waiting map[types.UID]bool // pods of the group being terminated
	done    chan struct{}      // closed when waiting empties
}

// New returns a Manager, or nil when no period is configured (graceful
// node shutdown off).
func New(opts Options) *Manager {
	if len(opts.Periods) == 0 {
		return nil
	}
	if opts.Connect == nil {
		opts.Connect = ConnectLogind
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Manager{opts: opts}
}

// ShuttingDown returns why the node is not ready while it shuts down, or
// nil.
func (m *Manager) ShuttingDown() error {
	if m == nil || !m.shuttingDown.Load() {
		return nil
	}
	return fmt.Errorf("%s", ShuttingDownMessage)
}

// Admit refuses every new pod while the node shuts down.
func (m *Manager) Admit() (ok bool, reason, message string) {
	if m.ShuttingDown() != nil {
		return false, ReasonNotAdmitted, MessageNotAdmitted
	}
	return true, "", ""
}

// PodTerminated tells the manager that a pod's containers are gone.
func (m *Manager) PodTerminated(uid types.UID) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.waiting[uid] {
		return
	}
	delete(m.waiting, uid)
	if len(m.waiting) == 0 {
		close(m.done)
	}
}

// Run takes the inhibitor lock (killer, the pod workers, is handed over
// here: they are built after the manager; onShutdown is called when a
// shutdown starts, so that the node reports NotReady at once rather than
// at its next status update) and handles logind's shutdown signals until
// ctx ends. When logind cannot be reached at first, it says so and gives
// up, as upstream's kubelet (which starts anyway); once watching, a lost
// bus is reconnected every second.
func (m *Manager) Run(ctx context.Context, killer Killer, onShutdown func()) {
	logger := klog.FromContext(ctx).WithName("nodeshutdown")
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Creating node shutdown manager", "shutdownGracePeriodRequested", Requested(m.opts.Periods), "shutdownGracePeriodByPodPriority", m.opts.Periods)
	lost, err := m.watch(ctx, killer, onShutdown)
	if err != nil {
		logger.Error(err, "Failed to start node shutdown manager: pods will not be given their shutdown grace periods when the node shuts down (graceful node shutdown needs systemd-logind on the system D-Bus)")
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-lost:
		}
		t := m.opts.Clock.NewTimer(reconnectPeriod)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		logger.V(1).Info("Restarting watch for node shutdown events")
		if lost, err = m.watch(ctx, killer, onShutdown); err != nil {
			logger.Error(err, "Unable to watch the node for shutdown events")
			lost = closedChan()
		}
	}
}

func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// watch connects, makes sure logind lets a delay lock hold the shutdown
// back long enough, takes the lock and handles signals on a goroutine
// until the bus goes or ctx ends; the returned channel is closed then.
func (m *Manager) watch(ctx context.Context, killer Killer, onShutdown func()) (<-chan struct{}, error) {
	logger := klog.FromContext(ctx)
	bus, err := m.opts.Connect()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (<-chan struct{}, error) {
		bus.Close()
		return nil, err
	}
	if err := m.ensureInhibitDelay(ctx, bus); err != nil {
		return fail(err)
	}
	lock, err := bus.Inhibit()
	if err != nil {
		return fail(err)
	}
	events, err := bus.Shutdowns()
	if err != nil {
		lock.Close()
		return fail(fmt.Errorf("failed to monitor shutdown: %w", err))
	}
	lost := make(chan struct{})
	go func() {
		defer close(lost)
		defer bus.Close()
		defer func() {
			if lock != nil {
				lock.Close()
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case shutdown, ok := <-events:
				if !ok {
					logger.Error(nil, "Ended to watching the node for shutdown events")
					return
				}
				lock = m.handle(ctx, bus, killer, onShutdown, shutdown, lock)
			}
		}
	}()
	return lost, nil
}

// handle carries out one PrepareForShutdown and returns the lock held
// afterwards (nil once released).
func (m *Manager) handle(ctx context.Context, bus Logind, killer Killer, onShutdown func(), shutdown bool, lock *os.File) *os.File {
	logger := klog.FromContext(ctx)
	if !shutdown {
		logger.V(1).Info("Shutdown manager detected new shutdown event", "event", "cancelled")
		m.event("Shutdown manager detected shutdown cancellation")
		m.shuttingDown.Store(false)
		next, err := bus.Inhibit()
		if err != nil {
			logger.Error(err, "Cannot take the inhibitor lock again after a cancelled shutdown")
			return lock
		}
		if lock != nil {
			lock.Close()
		}
		return next
	}
	logger.V(1).Info("Shutdown manager detected new shutdown event", "event", "shutdown")
	m.event("Shutdown manager detected shutdown event")
	m.shuttingDown.Store(true)
	if onShutdown != nil {
		onShutdown()
	}
	m.terminate(ctx, killer)
	if lock != nil {
		lock.Close()
	}
	logger.V(1).Info("Shutdown manager completed processing shutdown event, node will shutdown shortly")
	return nil
}

// terminate kills the active pods group by group, lowest priority first,
// each group waited for until its pods are gone or its budget is spent.
func (m *Manager) terminate(ctx context.Context, killer Killer) {
	logger := klog.FromContext(ctx)
	for _, g := range Groups(m.opts.Periods, m.opts.Pods.ActivePods()) {
		if len(g.Pods) == 0 {
			continue
		}
		done := m.await(g.Pods)
		for _, pod := range g.Pods {
			grace := g.GracePeriod(pod)
			logger.V(1).Info("Shutdown manager killing pod with gracePeriod", "pod", klog.KObj(pod), "gracePeriod", grace)
			if !killer.Evict(pod.UID, &grace, terminatedStatus()) {
				// Already stopping, or gone: it is waited for all the same.
				logger.V(1).Info("Shutdown manager found the pod already terminating", "pod", klog.KObj(pod))
			}
		}
		t := m.opts.Clock.NewTimer(g.Budget)
		select {
		case <-done:
			logger.V(1).Info("Done waiting for all pods in group to terminate", "gracePeriod", int64(g.Budget/time.Second), "priority", g.Priority)
		case <-t.C():
			logger.V(1).Info("Shutdown manager pod killing time out", "gracePeriod", int64(g.Budget/time.Second), "priority", g.Priority)
		case <-ctx.Done():
		}
		t.Stop()
		m.mu.Lock()
		m.waiting = nil
		m.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
	}
}

// await starts waiting for pods to terminate: the channel is closed when
// PodTerminated has been told of each.
func (m *Manager) await(pods []*v1.Pod) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.waiting = make(map[types.UID]bool, len(pods))
	for _, p := range pods {
		m.waiting[p.UID] = true
	}
	m.done = make(chan struct{})
	return m.done
}

// terminatedStatus is a pod's status once terminated for the shutdown:
// Failed, upstream's reason and message, and the DisruptionTarget
// condition.
func terminatedStatus() status.Eviction {
	return status.Eviction{
		Reason:  ReasonTerminated,
		Message: MessageTerminated,
		Condition: &v1.PodCondition{
			Type:    v1.DisruptionTarget,
			Status:  v1.ConditionTrue,
			Reason:  v1.PodReasonTerminationByKubelet,
			Message: MessageTerminated,
		},
	}
}

func (m *Manager) event(msg string) {
	if m.opts.Recorder != nil && m.opts.NodeRef != nil {
		m.opts.Recorder.Event(m.opts.NodeRef, v1.EventTypeNormal, EventNodeShutdown, msg)
	}
}

// ensureInhibitDelay asks logind for an inhibit delay of at least the
// whole budget when it allows less, and waits (with back-off, about 3 s)
// until logind has taken it.
func (m *Manager) ensureInhibitDelay(ctx context.Context, bus Logind) error {
	requested := Requested(m.opts.Periods)
	current, err := bus.InhibitDelay()
	if err != nil {
		return err
	}
	if requested <= current {
		return nil
	}
	if err := bus.OverrideInhibitDelay(requested); err != nil {
		return fmt.Errorf("unable to override inhibit delay by shutdown manager: %w", err)
	}
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if current, err = bus.InhibitDelay(); err != nil {
			return err
		}
		if requested <= current {
			return nil
		}
		if attempt == 5 {
			return fmt.Errorf("node shutdown manager was timed out after %d attempts waiting for logind InhibitDelayMaxSec to update to %v (ShutdownGracePeriod), current value is %v", attempt, requested, current)
		}
		t := m.opts.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C():
		}
		wait *= 2
	}
}
