package admission

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// nodeNameField is the one node field a nodeSelectorTerm may match.
const nodeNameField = "metadata.name"

// matchesNodeAffinity reports whether node satisfies the pod's nodeSelector
// and its required node affinity (upstream's RequiredNodeAffinity.Match).
func matchesNodeAffinity(pod *v1.Pod, node *v1.Node) bool {
	for k, v := range pod.Spec.NodeSelector {
		if got, ok := node.Labels[k]; !ok || got != v {
			return false
		}
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	// The terms are ORed; empty terms are skipped, so a selector with no
	// usable term matches no node.
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
			continue
		}
		if termMatches(&term, node) {
			return true
		}
	}
	return false
}

// termMatches: every expression and every field requirement of the term
// holds. A malformed requirement makes the term match nothing.
func termMatches(term *v1.NodeSelectorTerm, node *v1.Node) bool {
	if len(term.MatchExpressions) > 0 {
		sel, ok := labelSelector(term.MatchExpressions)
		if !ok || !sel.Matches(labels.Set(node.Labels)) {
			return false
		}
	}
	if len(term.MatchFields) > 0 {
		ok, valid := fieldsMatch(term.MatchFields, node)
		if !valid {
			return false
		}
		// Upstream compares fields only when the node has a name.
		if node.Name != "" && !ok {
			return false
		}
	}
	return true
}

// labelSelector turns node selector requirements into a label selector;
// labels.NewRequirement enforces their rules (In and NotIn need values,
// Exists and DoesNotExist none, Gt and Lt one integer).
func labelSelector(reqs []v1.NodeSelectorRequirement) (labels.Selector, bool) {
	ops := map[v1.NodeSelectorOperator]selection.Operator{
		v1.NodeSelectorOpIn:           selection.In,
		v1.NodeSelectorOpNotIn:        selection.NotIn,
		v1.NodeSelectorOpExists:       selection.Exists,
		v1.NodeSelectorOpDoesNotExist: selection.DoesNotExist,
		v1.NodeSelectorOpGt:           selection.GreaterThan,
		v1.NodeSelectorOpLt:           selection.LessThan,
	}
	sel := labels.NewSelector()
	for _, r := range reqs {
		op, ok := ops[r.Operator]
		if !ok {
			return nil, false
		}
		req, err := labels.NewRequirement(r.Key, op, r.Values)
		if err != nil {
			return nil, false
		}
		sel = sel.Add(*req)
	}
	return sel, true
}

// fieldsMatch evaluates field requirements against the node's fields (only
// metadata.name exists). valid is false for a malformed requirement: only In
// and NotIn, with exactly one value, are allowed.
func fieldsMatch(reqs []v1.NodeSelectorRequirement, node *v1.Node) (ok, valid bool) {
	ok = true
	for _, r := range reqs {
		if len(r.Values) != 1 {
			return false, false
		}
		var value string
		if r.Key == nodeNameField {
			value = node.Name
		}
		switch r.Operator {
		case v1.NodeSelectorOpIn:
			ok = ok && value == r.Values[0]
		case v1.NodeSelectorOpNotIn:
			ok = ok && value != r.Values[0]
		default:
			return false, false
		}
	}
	return ok, true
}
