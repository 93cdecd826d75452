package podworker

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/status"
)

// Upstream's reason and message for a pod past spec.activeDeadlineSeconds
// (pkg/kubelet/active_deadline.go): the pod status and the event say this.
const (
	ReasonDeadlineExceeded  = "DeadlineExceeded"
	MessageDeadlineExceeded = "Pod was active on the node longer than the specified deadline"
)

// timeLeft returns how long the pod may still be active: its
// activeDeadlineSeconds counted from its start time. ok is false when the
// pod has no deadline or has not started (no start time yet).
func timeLeft(pod *v1.Pod, start time.Time, now time.Time) (left time.Duration, ok bool) {
	if pod.Spec.ActiveDeadlineSeconds == nil || start.IsZero() {
		return 0, false
	}
	allowed := time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second
	return allowed - now.Sub(start), true
}

// untilDeadline is timeLeft for the worker's pod, from the start time of
// its latest status. Pods without a deadline cost nothing here.
func (wk *worker) untilDeadline(pod *v1.Pod) (time.Duration, bool) {
	if pod.Spec.ActiveDeadlineSeconds == nil || wk.evicted != nil {
		return 0, false
	}
	st, ok := wk.opts.Status.Get(wk.uid)
	if !ok {
		st = pod.Status
	}
	if st.StartTime == nil {
		return 0, false
	}
	return timeLeft(pod, st.StartTime.Time, wk.opts.Clock.Now())
}

// deadlineExceeded fails the pod as upstream does: a DeadlineExceeded
// event, phase Failed with upstream's reason and message, then the pod is
// killed within its grace period and stays down while its source lists it.
func (wk *worker) deadlineExceeded(ctx context.Context, pod *v1.Pod, st *container.PodStatus) {
	klog.FromContext(ctx).Info("Pod is past its active deadline; stopping it", "activeDeadlineSeconds", *pod.Spec.ActiveDeadlineSeconds)
	wk.opts.Recorder.Event(pod, v1.EventTypeNormal, ReasonDeadlineExceeded, MessageDeadlineExceeded)
	wk.evicted = &status.Eviction{Reason: ReasonDeadlineExceeded, Message: MessageDeadlineExceeded}
	wk.report(pod, st, nil, false)
	wk.set.kill(wk.uid, nil, reasonDeadline)
}
