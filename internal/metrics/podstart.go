package metrics

import (
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// PodStartTracker records the pod start-up metrics as upstream's kubelet
// does (kubelet.go and its pod startup latency tracker):
//
//   - kubelet_pod_start_duration_seconds: from berth first seeing the pod
//     to the first status it computes with phase Running after Pending.
//   - kubelet_pod_start_sli_duration_seconds and _total_duration_seconds:
//     from the pod's creation to the API watch showing every container
//     running, the SLI without the time spent pulling images. Only pods
//     that had not started when berth first saw them count, so a restart
//     of berth records nothing for pods already running.
//
// It is safe for concurrent use.
type PodStartTracker struct {
	m   *Metrics
	clk clock.PassiveClock

	mu   sync.Mutex
	pods map[types.UID]*podStart
}

type podStart struct {
	firstSeen time.Time
	// sli is false for pods that had started before berth saw them.
	sli         bool
	pullStarts  []time.Time
	pulls       []pull
	runningAt   time.Time // berth first computed every container running
	startDone   bool      // pod_start_duration recorded
	sliRecorded bool
}

type pull struct{ start, end time.Time }

// NewPodStartTracker returns a tracker recording into m; clk may be nil
// for real time.
func (m *Metrics) NewPodStartTracker(clk clock.PassiveClock) *PodStartTracker {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &PodStartTracker{m: m, clk: clk, pods: map[types.UID]*podStart{}}
}

// Seen is told of every pod a source delivers, API watch updates included.
func (t *PodStartTracker) Seen(pod *v1.Pod) {
	now := t.clk.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		delete(t.pods, pod.UID)
		return
	}
	st := t.pods[pod.UID]
	if st == nil {
		t.pods[pod.UID] = &podStart{firstSeen: now, sli: pod.Status.StartTime == nil}
		return
	}
	if !st.sli || st.sliRecorded || st.runningAt.IsZero() || !allRunning(pod) || pod.CreationTimestamp.IsZero() {
		return
	}
	total := now.Sub(pod.CreationTimestamp.Time)
	t.m.PodStartTotalDuration.Observe(total.Seconds())
	if !statefulPod(pod) { // upstream leaves pods with persistent volumes out of the SLI
		t.m.PodStartSLIDuration.Observe((total - pullTime(st.pulls)).Seconds())
	}
	st.sliRecorded = true
}

// StatusComputed is told of every status berth computes for a pod, with
// the phase of the one before ("" for none).
func (t *PodStartTracker) StatusComputed(pod *v1.Pod, oldPhase v1.PodPhase, status *v1.PodStatus) {
	now := t.clk.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.pods[pod.UID]
	if st == nil {
		return
	}
	if !st.startDone && (oldPhase == v1.PodPending || oldPhase == "") && status.Phase == v1.PodRunning {
		t.m.PodStartDuration.Observe(now.Sub(st.firstSeen).Seconds())
		st.startDone = true
	}
	if st.runningAt.IsZero() && allRunning(&v1.Pod{Status: *status}) {
		st.runningAt = now
	}
}

// ImagePullStarted and ImagePullFinished bracket one image pull for a pod.
func (t *PodStartTracker) ImagePullStarted(uid types.UID) {
	now := t.clk.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.pods[uid]; st != nil {
		st.pullStarts = append(st.pullStarts, now)
	}
}

func (t *PodStartTracker) ImagePullFinished(uid types.UID) {
	now := t.clk.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.pods[uid]; st != nil && len(st.pullStarts) > 0 {
		st.pulls = append(st.pulls, pull{start: st.pullStarts[0], end: now})
		st.pullStarts = st.pullStarts[1:]
	}
}

// Forget drops a pod that is gone.
func (t *PodStartTracker) Forget(uid types.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pods, uid)
}

// pullTime is the time covered by pulls, overlaps counted once; pulls are
// in order of their start.
func pullTime(pulls []pull) time.Duration {
	var total time.Duration
	var end time.Time
	for _, p := range pulls {
		switch {
		case p.start.After(end):
			total += p.end.Sub(p.start)
			end = p.end
		case p.end.After(end):
			total += p.end.Sub(end)
			end = p.end
		}
	}
	return total
}

// allRunning is upstream's hasPodStartedSLO, but false for a status
// that lists no containers yet.
func allRunning(pod *v1.Pod) bool {
	if len(pod.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running == nil || cs.State.Running.StartedAt.IsZero() {
			return false
		}
	}
	return true
}

// statefulPod reports a volume other than the ephemeral kinds.
func statefulPod(pod *v1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Secret == nil && v.ConfigMap == nil && v.DownwardAPI == nil && v.EmptyDir == nil && v.Projected == nil {
			return true
		}
	}
	return false
}
