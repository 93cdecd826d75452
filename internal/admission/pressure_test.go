package admission

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/internal/source"
)

func TestAdmitUnderPressure(t *testing.T) {
	bestEffort := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "be", Annotations: map[string]string{source.AnnotationConfigSource: source.SourceAPI}},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c"}}}}
	burstable := bestEffort.DeepCopy()
	burstable.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceMemory: resource.MustParse("10Mi")}
	tolerating := bestEffort.DeepCopy()
	tolerating.Spec.Tolerations = []v1.Toleration{{Key: v1.TaintNodeMemoryPressure, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}
	critical := bestEffort.DeepCopy()
	prio := int32(source.SystemCriticalPriority)
	critical.Spec.Priority = &prio
	mem := []v1.NodeConditionType{v1.NodeMemoryPressure}
	disk := []v1.NodeConditionType{v1.NodeDiskPressure}
	tests := []struct {
		name       string
		pod        *v1.Pod
		conditions []v1.NodeConditionType
		wantMsg    string // "" admitted
	}{
		{"no pressure", bestEffort, nil, ""},
		{"memory pressure refuses BestEffort", bestEffort, mem, "The node had condition: [MemoryPressure]. "},
		{"memory pressure admits Burstable", burstable, mem, ""},
		{"memory pressure admits a BestEffort pod tolerating its taint", tolerating, mem, ""},
		{"disk pressure refuses every pod", burstable, disk, "The node had condition: [DiskPressure]. "},
		{"both refuse Burstable", burstable, []v1.NodeConditionType{v1.NodeMemoryPressure, v1.NodeDiskPressure}, "The node had condition: [MemoryPressure DiskPressure]. "},
		{"critical pods always", critical, disk, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := AdmitUnderPressure(tt.pod, tt.conditions)
			if r.Admit != (tt.wantMsg == "") || r.Message != tt.wantMsg || (!r.Admit && r.Reason != ReasonEvicted) {
				t.Fatalf("got %+v, want message %q", r, tt.wantMsg)
			}
		})
	}
}
