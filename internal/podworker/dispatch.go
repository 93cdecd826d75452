package podworker

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/source"
)

// verdict is what a desired-pod change means for the pod set.
type verdict int

const (
	// ignore: nothing to do (a parked pod changed).
	ignore verdict = iota
	// remove: no source wants the pod: kill its worker, forget it if parked.
	remove
	// deleteParked: a parked pod (never run here) is being deleted: it can
	// leave the API at once.
	deleteParked
	// terminate: deletion requested: stop the pod within the deletion
	// grace period, also without a worker (containers from before a restart).
	terminate
	// update: give the admitted pod's worker the new spec.
	update
	// parkTerminal: finished before berth saw it: never started again.
	parkTerminal
	// admit: a new pod: node admission decides whether it runs.
	admit
)

func (v verdict) String() string {
	return [...]string{"ignore", "remove", "deleteParked", "terminate", "update", "parkTerminal", "admit"}[v]
}

// decide maps one change to a verdict from what the pod set knows of the
// pod: admitted (has a worker) or parked.
func decide(op source.Op, pod *v1.Pod, admitted, parked bool) verdict {
	switch {
	case op == source.Remove:
		return remove
	case parked && pod.DeletionTimestamp != nil:
		return deleteParked
	case parked:
		return ignore
	case pod.DeletionTimestamp != nil:
		return terminate
	case admitted:
		return update
	case isTerminal(pod):
		return parkTerminal
	}
	return admit
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

// rejectedStatus is the status of a pod the node cannot run, as upstream
// writes it: phase Failed with the admission reason and message.
func rejectedStatus(pod *v1.Pod, r admission.Result, now metav1.Time) v1.PodStatus {
	st := pod.Status.DeepCopy()
	st.Phase = v1.PodFailed
	st.Reason = r.Reason
	st.Message = "Pod was rejected: " + r.Message
	if st.StartTime == nil {
		st.StartTime = &now
	}
	return *st
}

// apply carries out the changes of one source snapshot, in order.
func (w *Workers) apply(logger klog.Logger, changes []source.Change) {
	for _, c := range changes {
		pod := c.Pod
		if c.Op != source.Remove {
			w.opts.Listener.PodSeen(pod)
		}
		switch decide(c.Op, pod, w.pods.Admitted(pod.UID), w.pods.isParked(pod.UID)) {
		case remove:
			if w.pods.unpark(pod.UID) {
				w.opts.Status.Delete(pod.UID)
			}
			w.kill(pod.UID, removalGrace(pod), reasonRemoved)
		case deleteParked:
			w.opts.Listener.PodTerminated(pod.UID, pod)
		case terminate:
			w.terminate(pod, pod.DeletionGracePeriodSeconds, reasonDeleted)
		case update:
			w.podUpdated(logger, pod)
			w.update(pod)
		case parkTerminal:
			w.pods.park(pod.UID, parkFinished)
		case admit:
			w.admit(logger, pod)
		}
	}
}

// admit runs a new pod through node admission and starts it, unless it is
// a static pod whose name an older static pod still holds: that one waits
// (startWaiting starts it once the name is free).
func (w *Workers) admit(logger klog.Logger, pod *v1.Pod) {
	if source.IsStatic(pod) && w.pods.staticNameTaken(pod) {
		logger.V(2).Info("Static pod waits for the older pod of the same name to terminate", "pod", klog.KObj(pod), "podUID", pod.UID)
		w.pods.park(pod.UID, parkWaiting)
		return
	}
	// After a restart the pod runs its allocated resources, which may
	// not be the spec's (a resize not yet allocated): those are admitted,
	// alongside the other pods at theirs, and the resize is decided next.
	allocated, _ := w.alloc.Allocated(pod)
	if w.opts.Admitter != nil {
		if r := w.opts.Admitter.Admit(allocated, w.allocatedPods(w.pods.ActivePods())); !r.Admit {
			w.reject(logger, pod, r)
			return
		}
	}
	// Checkpointed in the background (allocation.Manager.Run).
	w.alloc.Allocate(allocated)
	w.update(pod)
	if allocated != pod {
		w.podUpdated(logger, pod)
	}
}

// startWaiting admits the static pods that waited for their name, now
// that a pod has terminated.
func (w *Workers) startWaiting(logger klog.Logger) {
	for _, pod := range w.pods.waiting() {
		if w.pods.staticNameTaken(pod) {
			continue
		}
		w.pods.unpark(pod.UID)
		w.admit(logger, pod)
	}
}

// reject fails a pod the node cannot run, as upstream does: phase Failed
// with the admission reason and message, and a warning event.
func (w *Workers) reject(logger klog.Logger, pod *v1.Pod, r admission.Result) {
	logger.Info("Pod rejected at admission", "pod", klog.KObj(pod), "reason", r.Reason, "message", r.Message)
	w.opts.Recorder.Event(pod, v1.EventTypeWarning, r.Reason, r.Message)
	w.pods.park(pod.UID, parkRejected)
	st := rejectedStatus(pod, r, metav1.NewTime(w.opts.Clock.Now()))
	if w.opts.Status.Set(pod.UID, st) {
		w.opts.Listener.StatusChanged(pod, &st)
	}
}
