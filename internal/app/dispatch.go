package app

import (
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/source"
)

// podWorkers is what the dispatcher drives.
type podWorkers interface {
	Update(pod *v1.Pod)
	Kill(uid types.UID, gracePeriod *int64)
	Terminate(pod *v1.Pod, gracePeriod *int64)
	Known(uid types.UID) bool
	Pods() []*v1.Pod
}

// statusSetter records the status of pods that never get a worker.
type statusSetter interface {
	Set(uid types.UID, st v1.PodStatus) (changed bool)
	Delete(uid types.UID)
}

// dispatcher turns desired-pod changes into pod worker calls: it admits new
// pods, starts graceful deletion, and keeps pods that must not run (rejected
// or already finished) away from the workers.
type dispatcher struct {
	workers  podWorkers
	statuses statusSetter
	recorder record.EventRecorder
	// admit is nil in standalone mode, where static pods are always run.
	admit func(pod *v1.Pod, active []*v1.Pod) admission.Result
	// deletedWithoutWorker is called for a parked pod (never run here) that
	// is being deleted, so that it can be removed from the API at once.
	deletedWithoutWorker func(pod *v1.Pod)
	// seen, if set, is told of every added or updated pod: the API status
	// is reconciled with the newest API object (readiness gates, deletion
	// requests) and pod start-up is timed.
	seen func(pod *v1.Pod)
	now  func() time.Time

	// parked holds pods that are desired but will never run: rejected at
	// admission or terminal when first seen. Owned by the dispatch loop.
	parked map[types.UID]bool
}

func (d *dispatcher) apply(logger klog.Logger, changes []source.Change) {
	for _, c := range changes {
		pod := c.Pod
		switch c.Op {
		case source.Remove:
			if d.parked[pod.UID] {
				delete(d.parked, pod.UID)
				d.statuses.Delete(pod.UID)
			}
			d.workers.Kill(pod.UID, removalGrace(pod))
		case source.Add, source.Update:
			if d.seen != nil {
				d.seen(pod)
			}
			if d.parked[pod.UID] {
				if pod.DeletionTimestamp != nil && d.deletedWithoutWorker != nil {
					d.deletedWithoutWorker(pod)
				}
				continue
			}
			known := d.workers.Known(pod.UID)
			switch {
			case pod.DeletionTimestamp != nil:
				// Also without a worker: the pod may have containers from
				// before a restart, which must stop before the API object
				// goes.
				d.workers.Terminate(pod, pod.DeletionGracePeriodSeconds)
			case known:
				d.workers.Update(pod)
			case isTerminal(pod):
				// Finished before this berth saw it (e.g. across a restart):
				// its containers are not started again.
				d.park(pod.UID)
			default:
				if d.admit != nil {
					if r := d.admit(pod, activePods(d.workers.Pods())); !r.Admit {
						d.reject(logger, pod, r)
						continue
					}
				}
				d.workers.Update(pod)
			}
		}
	}
}

func (d *dispatcher) park(uid types.UID) {
	if d.parked == nil {
		d.parked = map[types.UID]bool{}
	}
	d.parked[uid] = true
}

// reject fails a pod the node cannot run, as upstream does: phase Failed
// with the admission reason and message, and a warning event.
func (d *dispatcher) reject(logger klog.Logger, pod *v1.Pod, r admission.Result) {
	logger.Info("Pod rejected at admission", "pod", klog.KObj(pod), "reason", r.Reason, "message", r.Message)
	d.recorder.Event(pod, v1.EventTypeWarning, r.Reason, r.Message)
	st := pod.Status.DeepCopy()
	st.Phase = v1.PodFailed
	st.Reason = r.Reason
	st.Message = "Pod was rejected: " + r.Message
	if st.StartTime == nil {
		t := metav1.NewTime(d.now())
		st.StartTime = &t
	}
	d.park(pod.UID)
	d.statuses.Set(pod.UID, *st)
}

// removalGrace is the grace period for a pod that a source no longer
// lists. A static pod whose manifest went gets its spec's grace period. A
// pod gone from the API without a graceful deletion that berth saw was
// deleted with grace 0 or forced (the API's final object, which said so,
// is not kept): it is killed at once, as upstream does.
func removalGrace(pod *v1.Pod) *int64 {
	if pod.DeletionGracePeriodSeconds != nil || source.IsStatic(pod) {
		return pod.DeletionGracePeriodSeconds
	}
	zero := int64(0)
	return &zero
}

func isTerminal(pod *v1.Pod) bool {
	return pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed
}

func activePods(pods []*v1.Pod) []*v1.Pod {
	out := pods[:0:0]
	for _, p := range pods {
		if !isTerminal(p) {
			out = append(out, p)
		}
	}
	return out
}
