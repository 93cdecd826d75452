package status

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/internal/container"
)

func q(s string) *resource.Quantity { v := resource.MustParse(s); return &v }

func TestContainerStatusResources(t *testing.T) {
	allocated := v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("200m"), v1.ResourceMemory: resource.MustParse("100Mi")},
		Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("400m"), v1.ResourceMemory: resource.MustParse("200Mi")},
	}
	tests := []struct {
		name   string
		state  container.State
		actual *container.Resources
		want   v1.ResourceRequirements
	}{
		{"running, runtime reports nothing: the allocation", container.StateRunning, nil, allocated},
		{"exited: the allocation", container.StateExited, &container.Resources{CPULimit: q("100m")}, allocated},
		{"running, resize not applied yet: the actual values", container.StateRunning,
			&container.Resources{CPURequest: q("100m"), CPULimit: q("300m"), MemoryRequest: q("50Mi"), MemoryLimit: q("150Mi")},
			v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("50Mi")},
				Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("300m"), v1.ResourceMemory: resource.MustParse("150Mi")},
			}},
		{"running, only the cpu request known", container.StateRunning, &container.Resources{CPURequest: q("150m")},
			v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("150m"), v1.ResourceMemory: resource.MustParse("100Mi")},
				Limits:   allocated.Limits,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := v1.Container{Name: "a", Image: "img", Resources: allocated}
			pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u"}, Spec: v1.PodSpec{Containers: []v1.Container{spec}}}
			rt := &container.PodStatus{UID: "u", Containers: []*container.ContainerStatus{{
				ID: "c1", Name: "a", State: tt.state, ExitCode: 0, Resources: tt.actual,
			}}}
			s := Compute(Input{Pod: pod, Runtime: rt, RuntimeName: "containerd"})
			cs := s.ContainerStatuses[0]
			if cs.Resources == nil || !apiequality.Semantic.DeepEqual(*cs.Resources, tt.want) {
				t.Errorf("resources = %v, want %v", cs.Resources, tt.want)
			}
			if !apiequality.Semantic.DeepEqual(cs.AllocatedResources, allocated.Requests) {
				t.Errorf("allocatedResources = %v, want %v", cs.AllocatedResources, allocated.Requests)
			}
		})
	}
}

func TestResizeConditions(t *testing.T) {
	pending := v1.PodCondition{Type: v1.PodResizePending, Status: v1.ConditionTrue, Reason: v1.PodReasonDeferred, Message: "Node didn't have enough resource: cpu"}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u"}, Spec: v1.PodSpec{
		RestartPolicy: v1.RestartPolicyNever, Containers: []v1.Container{{Name: "a"}}}}
	for _, tt := range []struct {
		name  string
		state container.State
		want  bool
	}{{"running pod reports them", container.StateRunning, true}, {"terminal pod does not", container.StateExited, false}} {
		rt := &container.PodStatus{UID: "u", Containers: []*container.ContainerStatus{{ID: "c1", Name: "a", State: tt.state}}}
		s := Compute(Input{Pod: pod, Runtime: rt, ResizeConditions: []v1.PodCondition{pending}})
		if got := findCondition(s.Conditions, v1.PodResizePending) != nil; got != tt.want {
			t.Errorf("%s: PodResizePending reported = %v, want %v", tt.name, got, tt.want)
		}
	}
}
