package admission

import (
	"fmt"
	"slices"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1"

	"github.com/berth-dev/berth/internal/container"
)

// ReasonEvicted is the reason a pod refused under node pressure gets, as
// upstream's eviction admit handler writes it.
const ReasonEvicted = "Evicted"

// AdmitUnderPressure is upstream's eviction admit handler: under no
// pressure every pod is admitted; critical pods always are; under memory
// pressure alone every pod but a BestEffort one that does not tolerate the
// memory-pressure taint is; under any other pressure no other pod is.
// conditions are the node's pressure conditions that are True.
func AdmitUnderPressure(pod *v1.Pod, conditions []v1.NodeConditionType) Result {
	if len(conditions) == 0 || isCritical(pod) {
		return Result{Admit: true}
	}
	if len(conditions) == 1 && conditions[0] == v1.NodeMemoryPressure {
		if container.PodQOS(pod) != v1.PodQOSBestEffort {
			return Result{Admit: true}
		}
		taint := &v1.Taint{Key: v1.TaintNodeMemoryPressure, Effect: v1.TaintEffectNoSchedule}
		if corev1.TolerationsTolerateTaint(logr.Discard(), pod.Spec.Tolerations, taint, false) {
			return Result{Admit: true}
		}
	}
	return Result{Reason: ReasonEvicted, Message: fmt.Sprintf("The node had condition: %v. ", slices.Clone(conditions))}
}
