package podworker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/panics"
	"github.com/berth-dev/berth/internal/plan"
	"github.com/berth-dev/berth/internal/status"
)

type podState int

const (
	stateSyncing podState = iota
	stateTerminating
)

// worker drives one pod. Its mutable fields are guarded by mu; the run loop
// reads a snapshot of them at each step.
type worker struct {
	uid             types.UID
	namespace, name string
	opts            *Options
	// set is told when the pod is gone from the runtime (finish), or ends
	// on its own (active deadline).
	set  *Workers
	wake chan struct{}
	// evicted is set, by the worker's own goroutine only, once the pod must
	// fail for good (active deadline): every later status says so.
	evicted *status.Eviction

	mu    sync.Mutex
	state podState
	pod   *v1.Pod // latest desired spec; nil for an orphan
	grace *int64  // grace period override for termination
	// revive holds a spec that arrived for this UID while the pod was being
	// terminated; it becomes the desired spec once termination finishes.
	revive *v1.Pod
	// eviction is set by Evict; the run loop makes it the worker's evicted.
	eviction *status.Eviction
}

func (wk *worker) poke() {
	select {
	case wk.wake <- struct{}{}:
	default:
	}
}

func (wk *worker) setDesired(pod *v1.Pod) {
	wk.mu.Lock()
	if wk.state == stateSyncing {
		wk.pod = pod
	} else {
		wk.revive = pod
	}
	wk.mu.Unlock()
	wk.poke()
}

func (wk *worker) setKill(grace *int64) {
	wk.mu.Lock()
	if wk.state == stateSyncing {
		wk.state = stateTerminating
		wk.grace = grace
	}
	wk.revive = nil
	wk.mu.Unlock()
	wk.poke()
}

func (wk *worker) desiredPod() *v1.Pod {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	if wk.state != stateSyncing {
		return nil
	}
	return wk.pod
}

// lastPod returns the latest desired spec, whatever the state.
func (wk *worker) lastPod() *v1.Pod {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	return wk.pod
}

// reset makes a terminated worker sync again with the revived spec, which
// it returns; nil when there is none. Called with the Workers lock held.
func (wk *worker) reset() *v1.Pod {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	if wk.revive == nil {
		return nil
	}
	wk.state, wk.pod, wk.grace, wk.revive = stateSyncing, wk.revive, nil, nil
	wk.evicted, wk.eviction = nil, nil
	return wk.pod
}

// run is the worker's loop. It returns true once the pod has been
// terminated and removed, false when ctx is cancelled.
func (wk *worker) run(ctx context.Context) bool {
	logger := klog.FromContext(ctx)
	clk := wk.opts.Clock
	// Whoever creates a worker pokes it, so the first sync needs no timer.
	timer := clk.NewTimer(wk.opts.ResyncPeriod)
	defer timer.Stop()
	retry := wk.opts.RetryPeriod
	for {
		select {
		case <-ctx.Done():
			return false
		case <-wk.wake:
		case <-timer.C():
		}
		wk.mu.Lock()
		state, pod, grace := wk.state, wk.pod, wk.grace
		if wk.eviction != nil {
			wk.evicted, wk.eviction = wk.eviction, nil
		}
		wk.mu.Unlock()

		var next time.Duration
		var err error
		switch state {
		case stateSyncing:
			err = panics.Do(wk.opts.Panics, func() (err error) {
				next, err = wk.sync(ctx, pod)
				return err
			})
		case stateTerminating:
			err = panics.Do(wk.opts.Panics, func() error { return wk.terminate(ctx, pod, grace) })
			if err == nil {
				if wk.set.finish(wk) {
					return true
				}
				// Revived: sync the new spec at once.
				wk.poke()
				next = wk.opts.ResyncPeriod
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			var verr *volumeError
			var perr *panics.Error
			var cerr *claimsError
			if errors.As(err, &perr) {
				// A bug, not a fault of the pod: the stack says where.
				logger.Error(err, "Pod worker panicked; retrying the pod", "retryIn", retry, "stack", string(perr.Stack))
			} else if errors.As(err, &verr) {
				// Already reported as a FailedMount event.
				logger.V(2).Info("Volumes not ready; retrying", "err", err, "retryIn", retry)
			} else if errors.As(err, &cerr) {
				// Already reported as a FailedPrepareDynamicResources event.
				logger.V(2).Info("Resource claims not ready; retrying", "err", err, "retryIn", retry)
			} else {
				logger.Error(err, "Pod sync failed; retrying", "retryIn", retry)
			}
			next = retry
			retry = min(2*retry, wk.opts.ResyncPeriod)
		} else {
			retry = wk.opts.RetryPeriod
		}
		if !timer.Stop() {
			select {
			case <-timer.C():
			default:
			}
		}
		timer.Reset(next)
	}
}

// sync makes one step towards the desired spec and reports the status. It
// returns when the pod should next be synced if nothing wakes it earlier.
func (wk *worker) sync(ctx context.Context, pod *v1.Pod) (time.Duration, error) {
	rt := wk.opts.Runtime
	// The pod runs with the resources allocated to it, which differ from
	// the spec's while a resize waits (resize.go).
	pod, _ = wk.set.alloc.Allocated(pod)
	st, err := wk.observe(ctx, pod.Name, pod.Namespace)
	if err != nil {
		return 0, err
	}
	if left, ok := wk.untilDeadline(pod); ok && left <= 0 {
		wk.deadlineExceeded(ctx, pod, st)
		return 0, nil
	}
	if v := wk.opts.Volumes; v != nil {
		if err := v.SetUp(ctx, pod); err != nil {
			// The volume manager has emitted FailedMount; containers stay
			// in ContainerCreating until the next attempt succeeds.
			wk.report(pod, st, nil, false)
			return 0, &volumeError{err}
		}
	}
	var probes plan.Probes
	if wk.opts.Prober != nil {
		probes = wk.opts.Prober
	}
	actions := plan.ComputePodActions(pod, st, probes)
	if c := wk.opts.Claims; c != nil && actions.CreateSandbox {
		// As upstream, before each new sandbox: the claims may have been
		// unprepared by a restart, and a claim not yet allocated or
		// reserved makes the pod wait.
		if err := c.Prepare(ctx, pod); err != nil {
			wk.report(pod, st, nil, false)
			return 0, &claimsError{err}
		}
	}
	var res container.SyncResult
	if actions.Changes() {
		res = rt.SyncPod(ctx, pod, st, actions)
		if fresh, err := wk.observe(ctx, pod.Name, pod.Namespace); err == nil {
			st = fresh
			// The PLEG does not wake a worker for a state it has read
			// itself, so a step that made the next one possible (a sidecar
			// is running: start the next init container) is taken now. A
			// step where something failed or waits (a back-off, an image)
			// is retried when the result says, and a plan asking for the
			// same again is waiting for the runtime.
			if next := plan.ComputePodActions(pod, st, probes); res.Err == nil && len(res.Waiting) == 0 &&
				next.Changes() && !reflect.DeepEqual(next, actions) {
				wk.poke()
			}
		}
	}
	wk.resizeProgress(pod, st, res.ResizeErr)
	if done := wk.report(pod, st, res.Waiting, false); done && wk.opts.Claims != nil && len(st.RunningContainers()) == 0 {
		// A pod that completed keeps no claim prepared (upstream
		// terminates it, which unprepares): the claim can be deallocated.
		if err := wk.opts.Claims.Unprepare(ctx, wk.uid); err != nil {
			return 0, err
		}
	}
	if err := rt.GarbageCollect(ctx, pod, st); err != nil {
		klog.FromContext(ctx).V(2).Info("Garbage collection of dead containers failed; will retry", "err", err)
	}
	next := wk.opts.ResyncPeriod
	if res.RequeueAfter > 0 && res.RequeueAfter < next {
		next = res.RequeueAfter
	}
	if left, ok := wk.untilDeadline(pod); ok {
		// Woken at the deadline, not at the next resync.
		next = max(min(next, left), 0)
	}
	if res.Err != nil {
		return next, res.Err
	}
	return next, nil
}

// observe reads the pod's runtime state and tells OnObserved.
func (wk *worker) observe(ctx context.Context, name, namespace string) (*container.PodStatus, error) {
	st, err := wk.opts.Runtime.GetPodStatus(ctx, wk.uid, name, namespace)
	if err != nil {
		return nil, fmt.Errorf("read runtime state: %w", err)
	}
	if wk.opts.Observer != nil {
		wk.opts.Observer.Observed(wk.uid, st)
	}
	return st, nil
}

// terminate stops the pod within its grace period and removes it from the
// runtime. pod is nil for an orphan found only in the runtime.
func (wk *worker) terminate(ctx context.Context, pod *v1.Pod, grace *int64) error {
	rt := wk.opts.Runtime
	if wk.opts.Prober != nil {
		wk.opts.Prober.RemovePod(wk.uid)
	}
	st, err := rt.GetPodStatus(ctx, wk.uid, wk.name, wk.namespace)
	if err != nil {
		return fmt.Errorf("read runtime state: %w", err)
	}
	if pod != nil && wk.evicted != nil {
		// Failed, with the eviction's reason, before the containers stop
		// (upstream sets the status first, then kills). Terminal: the
		// probes are already stopped and stay so.
		wk.report(pod, st, nil, true)
	}
	if st.IsRunning() {
		if err := rt.KillPod(ctx, pod, st, grace); err != nil {
			return fmt.Errorf("kill pod: %w", err)
		}
		if st, err = rt.GetPodStatus(ctx, wk.uid, wk.name, wk.namespace); err != nil {
			return fmt.Errorf("read runtime state: %w", err)
		}
	}
	if c := wk.opts.Claims; c != nil {
		// After the containers stop and before the terminal status is
		// reported (upstream's order: the claim's deallocation follows
		// the pod's status).
		if err := c.Unprepare(ctx, wk.uid); err != nil {
			return err
		}
	}
	if pod != nil {
		// The last status, with every container terminated, for whoever
		// still looks before the pod is forgotten.
		wk.report(pod, st, nil, true)
	}
	if v := wk.opts.Volumes; v != nil {
		if err := v.TearDown(ctx, wk.uid); err != nil {
			return fmt.Errorf("tear down volumes: %w", err)
		}
	}
	if err := rt.RemovePod(ctx, st); err != nil {
		return fmt.Errorf("remove pod: %w", err)
	}
	klog.FromContext(ctx).V(1).Info("Pod terminated and removed from the runtime")
	return nil
}

// report computes and stores the pod's status; it returns whether that
// status is terminal (Succeeded or Failed).
func (wk *worker) report(pod *v1.Pod, st *container.PodStatus, waiting map[string]container.Waiting, terminal bool) bool {
	old, ok := wk.opts.Status.Get(wk.uid)
	if !ok {
		old = pod.Status
	}
	in := status.Input{
		Pod:         pod,
		Old:         old,
		Runtime:     st,
		Waiting:     waiting,
		RuntimeName: wk.opts.Runtime.RuntimeName(),
		NodeIPs:     wk.opts.NodeIPs,
		Terminal:    terminal,
		Evicted:     wk.evicted,
		Now:         metav1.NewTime(wk.opts.Clock.Now()),

		ResizeConditions: wk.set.alloc.Conditions(wk.uid),
	}
	if wk.opts.Prober != nil {
		in.Probes = wk.opts.Prober
	}
	if wk.opts.PodCgroups != nil {
		in.PodCgroup = wk.opts.PodCgroups.PodConfig(pod)
	}
	computed := status.Compute(in)
	if wk.opts.Status.Set(wk.uid, computed) {
		wk.set.pods.setTerminal(wk.uid, status.IsTerminal(computed))
		wk.opts.Listener.StatusChanged(pod, &computed)
	}
	if wk.opts.Prober != nil && !terminal {
		wk.opts.Prober.Sync(pod, computed)
	}
	return status.IsTerminal(computed)
}

// volumeError marks a sync that stopped because volumes are not set up yet.
type volumeError struct{ err error }

func (e *volumeError) Error() string { return "set up volumes: " + e.err.Error() }
func (e *volumeError) Unwrap() error { return e.err }

// claimsError marks a sync that stopped because the pod's resource claims
// could not be prepared yet.
type claimsError struct{ err error }

func (e *claimsError) Error() string { return e.err.Error() }
func (e *claimsError) Unwrap() error { return e.err }
