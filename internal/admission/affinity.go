package admission

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// matchesNodeAffinity reports whether node satisfies the pod's nodeSelector
// and its required node affinity, with upstream's own matcher (the
// scheduler's and the kubelet's): terms are ORed, an empty or malformed term
// matches nothing, match fields know only metadata.name.
func matchesNodeAffinity(pod *v1.Pod, node *v1.Node) bool {
	// Match fails only for a nil node, which Admit has ruled out.
	ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)
	return ok
}
