package compare

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubetypes "k8s.io/kubernetes/pkg/kubelet/types"

	"github.com/berth-dev/berth/internal/source"
	"github.com/berth-dev/berth/internal/status"
)

// TestKubeletOwnsCondition: the condition types whose value is the
// kubelet's (berth's status computation and API merge keep no other copy).
func TestKubeletOwnsCondition(t *testing.T) {
	types := []v1.PodConditionType{
		v1.PodScheduled, v1.PodReady, v1.PodInitialized, v1.ContainersReady,
		v1.PodReadyToStartContainers, v1.PodResizeInProgress, v1.PodResizePending,
		v1.DisruptionTarget, v1.AllContainersRestarting,
		"example.com/ready-gate", "",
	}
	for _, ct := range types {
		if got, want := status.KubeletOwnsCondition(ct), kubetypes.PodConditionByKubelet(ct); got != want {
			t.Errorf("%q: berth owns %v, upstream %v", ct, got, want)
		}
	}
}

// TestStaticAndCriticalPods: which pods are static and which critical
// (admission's preemption, taints, oom_score_adj).
func TestStaticAndCriticalPods(t *testing.T) {
	prio := func(p int32) *int32 { return &p }
	pods := []*v1.Pod{
		{},
		{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"kubernetes.io/config.source": "api"}}},
		{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"kubernetes.io/config.source": "file"}}},
		{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"kubernetes.io/config.source": "http"}}},
		{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"kubernetes.io/config.source": ""}}},
		{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"kubernetes.io/config.source": "api", "kubernetes.io/config.mirror": "h"}}},
		{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"kubernetes.io/config.mirror": ""}}},
		{Spec: v1.PodSpec{Priority: prio(2000000000)}},
		{Spec: v1.PodSpec{Priority: prio(1999999999)}},
		{Spec: v1.PodSpec{Priority: prio(2000001000), PriorityClassName: "system-node-critical"}},
	}
	for i, p := range pods {
		if got, want := source.IsStatic(p), kubetypes.IsStaticPod(p); got != want {
			t.Errorf("pod %d (%v, %v): berth static %v, upstream %v", i, p.Annotations, p.Spec.Priority, got, want)
		}
		if got, want := source.IsCritical(p), kubetypes.IsCriticalPod(p); got != want {
			t.Errorf("pod %d (%v, %v): berth critical %v, upstream %v", i, p.Annotations, p.Spec.Priority, got, want)
		}
	}
}
