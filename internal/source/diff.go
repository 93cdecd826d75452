package source

import (
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
)

// Diff returns the changes that turn old into new, keyed by UID. A pod whose
// UID is in both is an Update only if it differs in a way that matters to
// berth (see Changed). The order is deterministic: by namespace, name and
// UID, and for one namespace/name a Remove comes before an Add, so that a pod
// replaced under the same name is stopped before its successor starts.
func Diff(old, new map[types.UID]*v1.Pod) []Change {
	var changes []Change
	for uid, o := range old {
		if _, ok := new[uid]; !ok {
			changes = append(changes, Change{Op: Remove, Pod: o})
		}
	}
	for uid, n := range new {
		o, ok := old[uid]
		switch {
		case !ok:
			changes = append(changes, Change{Op: Add, Pod: n})
		case Changed(o, n):
			changes = append(changes, Change{Op: Update, Pod: n})
		}
	}
	sortChanges(changes)
	return changes
}

// opOrder puts removals first, then updates (deletions among them), then
// additions: a name freed by a removal is free for the addition that takes
// it, and what leaves the node is known before what arrives is admitted.
func opOrder(op Op) int {
	switch op {
	case Remove:
		return 0
	case Update:
		return 1
	}
	return 2
}

// sortChanges orders changes by operation, then additions oldest first, as
// upstream's HandlePodAdditions admits them: after a restart the pods that
// ran before are admitted before pods created since, so a full node never
// turns a running pod away for a newer one. Then namespace, name, UID.
func sortChanges(changes []Change) {
	sort.Slice(changes, func(i, j int) bool {
		a, b := changes[i], changes[j]
		if a.Op != b.Op {
			return opOrder(a.Op) < opOrder(b.Op)
		}
		if a.Op == Add && !a.Pod.CreationTimestamp.Equal(&b.Pod.CreationTimestamp) {
			return a.Pod.CreationTimestamp.Before(&b.Pod.CreationTimestamp)
		}
		if a.Pod.Namespace != b.Pod.Namespace {
			return a.Pod.Namespace < b.Pod.Namespace
		}
		if a.Pod.Name != b.Pod.Name {
			return a.Pod.Name < b.Pod.Name
		}
		return a.Pod.UID < b.Pod.UID
	})
}

// Changed reports whether new differs from old in what berth acts on: the
// spec, labels, annotations other than AnnotationConfigSeen, or a deletion
// request. Status is the kubelet's own output and never a change.
func Changed(old, new *v1.Pod) bool {
	return !equality.Semantic.DeepEqual(old.Spec, new.Spec) ||
		!equality.Semantic.DeepEqual(old.Labels, new.Labels) ||
		!annotationsEqual(old.Annotations, new.Annotations) ||
		!equality.Semantic.DeepEqual(old.DeletionTimestamp, new.DeletionTimestamp) ||
		!equality.Semantic.DeepEqual(old.DeletionGracePeriodSeconds, new.DeletionGracePeriodSeconds)
}

func annotationsEqual(a, b map[string]string) bool {
	count := func(m map[string]string) int {
		n := len(m)
		if _, ok := m[AnnotationConfigSeen]; ok {
			n--
		}
		return n
	}
	if count(a) != count(b) {
		return false
	}
	for k, v := range a {
		if k == AnnotationConfigSeen {
			continue
		}
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
