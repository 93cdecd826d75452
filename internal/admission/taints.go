package admission

import (
	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1"
)

// hasUntoleratedNoExecuteTaint reports whether the node has a NoExecute
// taint that no toleration of the pod tolerates (v1.Toleration.ToleratesTaint,
// through upstream's own helper). Other effects only steer the scheduler; a
// pod already bound here is not refused for them. The Lt and Gt operators
// stay off as upstream's TaintTolerationComparisonOperators gate (alpha,
// off by default): they tolerate nothing.
func hasUntoleratedNoExecuteTaint(taints []v1.Taint, tolerations []v1.Toleration) bool {
	// Only comparison operators log (a value that is not a number); with
	// them off there is nothing to say.
	_, untolerated := corev1.FindMatchingUntoleratedTaint(logr.Discard(), taints, tolerations,
		func(t *v1.Taint) bool { return t.Effect == v1.TaintEffectNoExecute }, false)
	return untolerated
}
