package podworker

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/source"
	"github.com/berth-dev/berth/internal/status"
)

// An evicted pod is reported Failed with the eviction's reason, message
// and condition before its containers are killed, is removed, and stays
// down (parked) while its source still lists it.
func TestEvictFailsKillsAndParks(t *testing.T) {
	h := start(t)
	pod := testPod("u1", "busybox:1")
	h.w.setSource(klog.Background(), source.SourceAPI, []*v1.Pod{pod})
	waitStatus(t, h, "u1", func(s v1.PodStatus) bool { return s.Phase == v1.PodRunning })

	cond := &v1.PodCondition{Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: v1.PodReasonTerminationByKubelet, Message: "low"}
	grace := int64(1)
	if !h.w.Evict("u1", &grace, status.Eviction{Reason: "Evicted", Message: "The node was low on resource: memory. ", Condition: cond}) {
		t.Fatal("Evict refused a running pod")
	}
	if reason, ok := h.w.pods.Terminating("u1"); !ok || reason != reasonEvicted {
		t.Fatalf("Terminating = %q, %v", reason, ok)
	}
	if h.w.Evict("u1", &grace, status.Eviction{Reason: "Evicted"}) {
		t.Fatal("Evict accepted a pod already being stopped")
	}
	h.rt.waitFor(t, "KillPod")
	h.rt.waitFor(t, "RemovePod")
	<-h.terminated
	st, _ := h.store.Get("u1")
	if st.Phase != v1.PodFailed || st.Reason != "Evicted" || st.Message != "The node was low on resource: memory. " {
		t.Fatalf("status %s/%s/%q, want Failed/Evicted", st.Phase, st.Reason, st.Message)
	}
	var found bool
	for _, c := range st.Conditions {
		found = found || (c.Type == v1.DisruptionTarget && c.Reason == v1.PodReasonTerminationByKubelet)
	}
	if !found {
		t.Fatalf("no DisruptionTarget condition in %+v", st.Conditions)
	}
	if !h.w.pods.isParked("u1") {
		t.Fatal("evicted pod still listed by its source is not parked")
	}
	if h.w.Evict("missing", &grace, status.Eviction{}) {
		t.Fatal("Evict accepted an unknown pod")
	}
}
