package admission

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestAdmitResize(t *testing.T) {
	other := testPod("other", list("cpu", "1", "memory", "1Gi"))
	critical := func(p *v1.Pod) { p.Spec.Priority = ptr(int32(2000001000)); static(p) }
	tests := []struct {
		name        string
		pod         *v1.Pod
		others      []*v1.Pod
		wantAdmit   bool
		wantReason  string
		wantMessage string
	}{
		{"fits beside the others", testPod("p", list("cpu", "900m")), []*v1.Pod{other}, true, "", ""},
		{"no room now: Deferred (the predicate's reason)", testPod("p", list("cpu", "1500m")), []*v1.Pod{other}, false, ReasonOutOfCPU,
			"Node didn't have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000"},
		{"its own old allocation does not count", testPod("p", list("cpu", "1500m")), []*v1.Pod{testPod("p", list("cpu", "1"))}, true, "", ""},
		{"beyond allocatable: Infeasible", testPod("p", list("cpu", "3")), nil, false, v1.PodReasonInfeasible,
			"Node didn't have enough capacity: cpu, requested: 3000, capacity: 2000"},
		{"memory beyond allocatable: Infeasible", testPod("p", list("cpu", "3", "memory", "5Gi")), nil, false, v1.PodReasonInfeasible,
			"Node didn't have enough capacity: memory, requested: 5368709120, capacity: 4294967296"},
		{"a critical pod preempts nobody for a resize", testPod("p", list("cpu", "1500m"), critical), []*v1.Pod{other}, false, ReasonOutOfCPU,
			"Node didn't have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := AdmitResize(tt.pod, testNode(), tt.others)
			if r.Admit != tt.wantAdmit || r.Reason != tt.wantReason || r.Message != tt.wantMessage || len(r.Preempt) > 0 {
				t.Errorf("got %+v, want admit %v reason %q message %q", r, tt.wantAdmit, tt.wantReason, tt.wantMessage)
			}
		})
	}
}
