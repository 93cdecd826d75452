package podworker

import (
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/allocation"
	"github.com/berth-dev/berth/internal/container"
)

// In-place resize (upstream's handlePodResourcesResize and pending
// resizes). A pod's workers run its allocated resources
// (allocation.Manager); when a source brings other resources for an
// admitted pod, they are allocated if the node has room for them with the
// other pods at their allocated resources, else the resize waits with
// PodResizePending (Deferred: retried when a pod leaves or another resize
// frees room; Infeasible: not retried until the spec changes again).

// resizeRetryPeriod is upstream's retryDelay for deferred resizes.
const resizeRetryPeriod = 3 * time.Minute

// allocatedPods returns the pods with an allocation at their allocated
// resources: what admission counts (a pod not admitted yet has none).
func (w *Workers) allocatedPods(active []*v1.Pod) []*v1.Pod {
	out := make([]*v1.Pod, 0, len(active))
	for _, p := range active {
		if w.alloc.HasAllocation(p.UID) {
			a, _ := w.alloc.Allocated(p)
			out = append(out, a)
		}
	}
	return out
}

// podUpdated handles a new spec of an admitted pod: a resize is decided,
// a reverted one forgotten.
func (w *Workers) podUpdated(logger klog.Logger, pod *v1.Pod) {
	if _, differs := w.alloc.Allocated(pod); !differs {
		w.alloc.ClearPending(pod.UID)
		return
	}
	if w.handleResize(logger, pod) {
		w.retryResizes(logger)
	}
}

// handleResize allocates pod's desired resources if they fit; it reports
// whether it did. Otherwise the pod gets PodResizePending, and a deferred
// resize is queued for retries.
func (w *Workers) handleResize(logger klog.Logger, pod *v1.Pod) bool {
	if _, differs := w.alloc.Allocated(pod); !differs {
		w.alloc.ClearPending(pod.UID)
		return false
	}
	if w.opts.ResizeAdmitter != nil {
		others := w.allocatedPods(w.pods.ActivePods())
		if r := w.opts.ResizeAdmitter.AdmitResize(pod, others); !r.Admit {
			if w.alloc.SetPending(pod.UID, r.Reason, r.Message, pod.Generation) {
				reason := w.alloc.PendingReason(pod.UID)
				event := allocation.EventResizeDeferred
				if reason == v1.PodReasonInfeasible {
					event = allocation.EventResizeInfeasible
				}
				logger.Info("Pod resize pending", "pod", klog.KObj(pod), "reason", reason, "message", r.Message)
				w.opts.Recorder.Event(pod, v1.EventTypeWarning, event, allocation.Message(pod, pod.Generation, r.Message, fmt.Sprintf("Pod resize %s", reason)))
			}
			if w.alloc.PendingReason(pod.UID) == v1.PodReasonDeferred {
				w.alloc.AddPending(pod.UID)
			}
			w.wake(pod.UID) // the status shows the condition
			return false
		}
	}
	if err := w.alloc.SetAllocated(pod); err != nil {
		// The allocation holds in memory; it is written again with the
		// next change.
		logger.Error(err, "Failed to checkpoint a pod's allocated resources", "pod", klog.KObj(pod))
	}
	w.alloc.ClearPending(pod.UID)
	w.alloc.ClearInProgress(pod.UID)
	w.alloc.SetInProgress(pod.UID, "", "", pod.Generation)
	logger.V(2).Info("Pod resize allocated", "pod", klog.KObj(pod))
	w.opts.Recorder.Event(pod, v1.EventTypeNormal, allocation.EventResizeStarted, allocation.Message(pod, pod.Generation, "", "Pod resize started"))
	w.wake(pod.UID)
	return true
}

// retryResizes tries the deferred resizes again, in upstream's order,
// after room may have appeared (a pod left, a resize was allocated).
func (w *Workers) retryResizes(logger klog.Logger) {
	uids := w.alloc.TakePending()
	if len(uids) == 0 {
		return
	}
	var pods []*v1.Pod
	for _, uid := range uids {
		if p := w.desiredAdmitted(uid); p != nil {
			pods = append(pods, p)
		}
	}
	allocation.SortPending(pods,
		func(p *v1.Pod) bool {
			a, _ := w.alloc.Allocated(p)
			return allocation.IncreasesRequests(p, a)
		},
		func(p *v1.Pod) (int64, bool) {
			for _, c := range w.alloc.Conditions(p.UID) {
				if c.Type == v1.PodResizePending {
					return c.LastTransitionTime.UnixNano(), true
				}
			}
			return 0, false
		})
	for _, p := range pods {
		w.handleResize(logger, p)
	}
}

// desiredAdmitted returns the desired spec of a pod whose worker syncs
// it, nil for any other.
func (w *Workers) desiredAdmitted(uid types.UID) *v1.Pod {
	w.mu.Lock()
	wk, ok := w.workers[uid]
	w.mu.Unlock()
	if !ok {
		return nil
	}
	return wk.desiredPod()
}

// resizeProgress updates PodResizeInProgress after a sync, as upstream's
// SyncPod: set while a running container lacks its allocated resources,
// cleared (ResizeCompleted) once none does, reason Error with the
// runtime's message when applying failed.
func (wk *worker) resizeProgress(allocated *v1.Pod, st *container.PodStatus, resizeErr string) {
	alloc, rec := wk.set.alloc, wk.opts.Recorder
	if allocation.InProgress(allocated, st) {
		alloc.SetInProgress(wk.uid, "", "", allocated.Generation)
	} else if gen, cleared := alloc.ClearInProgress(wk.uid); cleared {
		rec.Event(allocated, v1.EventTypeNormal, allocation.EventResizeCompleted, allocation.Message(allocated, gen, "", "Pod resize completed"))
	}
	if resizeErr != "" {
		if gen, changed := alloc.SetInProgress(wk.uid, v1.PodReasonError, resizeErr, allocated.Generation); changed {
			rec.Event(allocated, v1.EventTypeWarning, allocation.EventResizeError, allocation.Message(allocated, gen, resizeErr, "Pod resize error"))
		}
	}
}
