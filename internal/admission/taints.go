package admission

import (
	v1 "k8s.io/api/core/v1"
)

// hasUntoleratedNoExecuteTaint reports whether the node has a NoExecute
// taint that no toleration of the pod tolerates. Other effects only steer
// the scheduler; a pod already bound here is not refused for them.
func hasUntoleratedNoExecuteTaint(taints []v1.Taint, tolerations []v1.Toleration) bool {
	for i := range taints {
		t := &taints[i]
		if t.Effect != v1.TaintEffectNoExecute {
			continue
		}
		tolerated := false
		for j := range tolerations {
			if tolerates(&tolerations[j], t) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			return true
		}
	}
	return false
}

// tolerates: an empty effect or key in the toleration matches any; the Lt
// and Gt operators are behind an alpha feature gate upstream and match
// nothing here.
func tolerates(tol *v1.Toleration, taint *v1.Taint) bool {
	if tol.Effect != "" && tol.Effect != taint.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != taint.Key {
		return false
	}
	switch tol.Operator {
	case "", v1.TolerationOpEqual:
		return tol.Value == taint.Value
	case v1.TolerationOpExists:
		return true
	}
	return false
}
