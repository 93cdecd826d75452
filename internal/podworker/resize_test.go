package podworker

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/source"
)

// cpuBudget admits resizes while the pods' cpu requests fit in milli.
type cpuBudget struct{ milli int64 }

func (b cpuBudget) AdmitResize(pod *v1.Pod, others []*v1.Pod) admission.Result {
	sum := pod.Spec.Containers[0].Resources.Requests.Cpu().MilliValue()
	if sum > b.milli {
		return admission.Result{Reason: v1.PodReasonInfeasible, Message: "never"}
	}
	for _, o := range others {
		if o.UID != pod.UID {
			sum += o.Spec.Containers[0].Resources.Requests.Cpu().MilliValue()
		}
	}
	if sum > b.milli {
		return admission.Result{Reason: "OutOfcpu", Message: "Node didn't have enough resource: cpu"}
	}
	return admission.Result{Admit: true}
}

func cpuPod(uid, cpu string) *v1.Pod {
	p := testPod(k8stypes.UID(uid), "busybox:1")
	p.Name = uid
	p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}
	return p
}

func pendingReason(h *harness, uid string) string { return h.w.alloc.PendingReason(k8stypes.UID(uid)) }

// A resize with no room waits (Deferred) and is allocated when a pod
// leaves; one beyond the node is Infeasible; a reverted one is forgotten.
func TestResizeDeferredUntilAPodLeaves(t *testing.T) {
	h := start(t, func(o *Options) { o.ResizeAdmitter = cpuBudget{milli: 1000} })
	logger := klog.Background()
	h.w.apply(logger, []source.Change{{Op: source.Add, Pod: cpuPod("a", "500m")}, {Op: source.Add, Pod: cpuPod("b", "400m")}})
	h.rt.waitFor(t, "SyncPod")

	h.w.apply(logger, []source.Change{{Op: source.Update, Pod: cpuPod("a", "700m")}})
	if got := pendingReason(h, "a"); got != v1.PodReasonDeferred {
		t.Fatalf("pending reason %q, want Deferred", got)
	}
	if a, _ := h.w.alloc.Allocated(cpuPod("a", "700m")); a.Spec.Containers[0].Resources.Requests.Cpu().MilliValue() != 500 {
		t.Fatalf("deferred resize was allocated")
	}
	waitStatus(t, h, k8stypes.UID("a"), func(s v1.PodStatus) bool {
		for _, c := range s.Conditions {
			if c.Type == v1.PodResizePending && c.Reason == v1.PodReasonDeferred {
				return true
			}
		}
		return false
	})

	// Beyond the node: Infeasible, not retried.
	h.w.apply(logger, []source.Change{{Op: source.Update, Pod: cpuPod("b", "2")}})
	if got := pendingReason(h, "b"); got != v1.PodReasonInfeasible {
		t.Fatalf("pending reason of b %q, want Infeasible", got)
	}
	// Reverted: forgotten.
	h.w.apply(logger, []source.Change{{Op: source.Update, Pod: cpuPod("b", "400m")}})
	if got := pendingReason(h, "b"); got != "" {
		t.Fatalf("reverted resize still pending: %q", got)
	}

	// b leaves: a's resize is retried and allocated.
	h.w.apply(logger, []source.Change{{Op: source.Remove, Pod: cpuPod("b", "400m")}})
	h.rt.waitFor(t, "RemovePod")
	<-h.terminated
	waitStatus(t, h, k8stypes.UID("a"), func(s v1.PodStatus) bool {
		for _, c := range s.Conditions {
			if c.Type == v1.PodResizePending {
				return false
			}
		}
		return true
	})
	if a, _ := h.w.alloc.Allocated(cpuPod("a", "500m")); a.Spec.Containers[0].Resources.Requests.Cpu().MilliValue() != 700 {
		t.Fatalf("resize not allocated after b left: %v", a.Spec.Containers[0].Resources)
	}
	if h.w.alloc.HasAllocation(k8stypes.UID("b")) {
		t.Errorf("b's allocation kept after it left")
	}
}
