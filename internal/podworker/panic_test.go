package podworker

import (
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

type panicCounter struct{ n atomic.Int64 }

func (c *panicCounter) Inc() { c.n.Add(1) }

// stepUntil steps the fake clock until the runtime reports call: the
// worker's retry timer runs on it, re-armed after the failure is logged,
// so the clock is stepped until it fires.
func stepUntil(t *testing.T, h *harness, call string, step time.Duration) {
	t.Helper()
	seen := make(chan struct{})
	go func() { h.rt.waitFor(t, call); close(seen) }()
	for {
		select {
		case <-seen:
			return
		case <-time.After(10 * time.Millisecond):
			h.clock.Step(step)
		}
	}
}

// A panic in one pod's sync fails that pod's step only: it is counted,
// the pod is retried with back-off until it runs, and another pod runs
// meanwhile.
func TestPanicInSyncIsRecoveredAndRetried(t *testing.T) {
	var panicked panicCounter
	h := start(t, func(o *Options) { o.Panics = &panicked })
	h.rt.mu.Lock()
	h.rt.panics["bad"] = 2
	h.rt.mu.Unlock()

	h.w.update(testPod("bad", "busybox:1"))
	h.rt.waitFor(t, "SyncPodPanicked")
	good := testPod("good", "busybox:1")
	good.Name = "other"
	h.w.update(good)
	waitStatus(t, h, "good", func(s v1.PodStatus) bool { return s.Phase == v1.PodRunning })

	stepUntil(t, h, "SyncPodPanicked", time.Second)
	stepUntil(t, h, "SyncPod", time.Second)
	waitStatus(t, h, "bad", func(s v1.PodStatus) bool { return s.Phase == v1.PodRunning })
	if got := panicked.n.Load(); got != 2 {
		t.Errorf("recovered panics counted = %d, want 2", got)
	}
}

// A panic while terminating is retried too: the pod is still killed and
// removed in the end.
func TestPanicInTerminationIsRetried(t *testing.T) {
	var panicked panicCounter
	h := start(t, func(o *Options) { o.Panics = &panicked })
	h.w.update(testPod("u1", "busybox:1"))
	waitStatus(t, h, "u1", func(s v1.PodStatus) bool { return s.Phase == v1.PodRunning })
	h.rt.mu.Lock()
	h.rt.panics["u1"] = 1
	h.rt.mu.Unlock()
	h.w.kill("u1", nil, reasonRemoved)
	h.rt.waitFor(t, "KillPodPanicked")
	stepUntil(t, h, "RemovePod", time.Second)
	if uid := <-h.terminated; uid != types.UID("u1") {
		t.Fatalf("terminated %s", uid)
	}
	if got := panicked.n.Load(); got != 1 {
		t.Errorf("recovered panics counted = %d, want 1", got)
	}
}
