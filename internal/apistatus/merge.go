package apistatus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/berth-dev/berth/internal/status"
)

// merge returns the status to write to the API object api, given berth's
// latest status for it (upstream's mergePodStatus and the parts of
// updateStatusInternal that compare against the API). ok is false when
// nothing may be written: the API already holds a terminal phase and berth's
// status is not terminal (a terminal pod never runs again, so its final
// status stands). now stamps the transition of a condition that merge itself
// changes. Neither input is modified.
func merge(api *v1.Pod, ours v1.PodStatus, now metav1.Time) (merged v1.PodStatus, ok bool) {
	old := &api.Status
	out := *ours.DeepCopy()

	if isTerminal(old.Phase) {
		if !isTerminal(out.Phase) {
			return v1.PodStatus{}, false
		}
		// The first terminal phase reported stays: controllers may have
		// acted on it already.
		out.Phase, out.Reason, out.Message = old.Phase, old.Reason, old.Message
	}

	// The kubelet's conditions (status.KubeletOwnsCondition) are berth's;
	// every other one (readiness gates, conditions set by controllers) is
	// kept as the API has it, since berth's copy of those may be stale.
	// DisruptionTarget is shared: see below.
	conds := make([]v1.PodCondition, 0, len(old.Conditions)+len(out.Conditions))
	for _, c := range old.Conditions {
		if !status.KubeletOwnsCondition(c.Type) {
			conds = append(conds, c)
		}
	}
	for _, c := range out.Conditions {
		switch {
		case status.KubeletOwnsCondition(c.Type):
			// Keep the API's transition time while the status is the same,
			// so a berth restart (which forgets the times of static pods)
			// does not rewrite every condition.
			if o := findCondition(old.Conditions, c.Type); o != nil && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
			conds = append(conds, c)
		case c.Type == v1.DisruptionTarget && isTerminal(out.Phase):
			// Berth's reason for stopping the pod (eviction, shutdown) is
			// reported with the terminal phase, not before, as upstream
			// does, so that it is never seen on a pod still running.
			conds = replaceOrAppend(conds, c)
		}
		// Other conditions in berth's status are copies from the desired
		// pod; the API's are newer and were kept above.
	}
	out.Conditions = conds
	gateReadiness(api, &out, now)

	// Fields other components own.
	out.ResourceClaimStatuses = old.ResourceClaimStatuses
	out.ExtendedResourceClaimStatus = old.ExtendedResourceClaimStatus
	out.NodeAllocatableResourceClaimStatuses = old.NodeAllocatableResourceClaimStatuses
	if len(out.VolumeHealth) == 0 {
		out.VolumeHealth = old.VolumeHealth
	}

	// A pod's start time never changes once the API has one.
	if old.StartTime != nil && !old.StartTime.IsZero() {
		out.StartTime = old.StartTime.DeepCopy()
	}
	// Never report an older generation than the API has seen reported.
	if old.ObservedGeneration > out.ObservedGeneration {
		out.ObservedGeneration = old.ObservedGeneration
	}
	return out, true
}

// gateReadiness re-evaluates the Ready condition against the readiness-gate
// conditions the API holds now: other components set those, and the copy
// berth computed Ready from may be older. It only matters while the
// containers are ready; otherwise Ready is False for the containers' reason.
func gateReadiness(api *v1.Pod, s *v1.PodStatus, now metav1.Time) {
	gates := api.Spec.ReadinessGates
	if len(gates) == 0 {
		return
	}
	if cr := findCondition(s.Conditions, v1.ContainersReady); cr == nil || cr.Status != v1.ConditionTrue {
		return
	}
	ready := findCondition(s.Conditions, v1.PodReady)
	if ready == nil {
		return
	}
	var msgs []string
	for _, g := range gates {
		c := findCondition(s.Conditions, g.ConditionType)
		switch {
		case c == nil:
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
		case c.Status != v1.ConditionTrue:
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", g.ConditionType, c.Status))
		}
	}
	want := v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionTrue}
	if len(msgs) > 0 {
		want = v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse,
			Reason: status.ReasonReadinessGatesNotReady, Message: strings.Join(msgs, ", ")}
	}
	if ready.Status == want.Status && ready.Reason == want.Reason && ready.Message == want.Message {
		return
	}
	want.ObservedGeneration = ready.ObservedGeneration
	want.LastProbeTime = ready.LastProbeTime
	want.LastTransitionTime = ready.LastTransitionTime
	if o := findCondition(api.Status.Conditions, v1.PodReady); o != nil && o.Status == want.Status {
		want.LastTransitionTime = o.LastTransitionTime
	} else if ready.Status != want.Status {
		want.LastTransitionTime = now.Rfc3339Copy()
	}
	*ready = want
}

// statusPatch returns the strategic-merge patch that turns old into new on
// the API object with the given UID, as upstream's statusutil.PatchPodStatus
// does. The patch always carries metadata.uid: the API server then refuses
// it (409 Conflict) if the object by that name is another pod, e.g. one
// recreated with the same name. unchanged reports a patch with nothing but
// that precondition.
func statusPatch(uid types.UID, old, new v1.PodStatus) (patch []byte, unchanged bool, err error) {
	oldData, err := json.Marshal(v1.Pod{Status: old})
	if err != nil {
		return nil, false, fmt.Errorf("encode old status: %w", err)
	}
	newData, err := json.Marshal(v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: new})
	if err != nil {
		return nil, false, fmt.Errorf("encode new status: %w", err)
	}
	patch, err = strategicpatch.CreateTwoWayMergePatch(oldData, newData, v1.Pod{})
	if err != nil {
		return nil, false, fmt.Errorf("create status patch: %w", err)
	}
	return patch, bytes.Equal(patch, uidOnlyPatch(uid)), nil
}

func uidOnlyPatch(uid types.UID) []byte {
	return fmt.Appendf(nil, `{"metadata":{"uid":%q}}`, uid)
}

func isTerminal(p v1.PodPhase) bool { return p == v1.PodSucceeded || p == v1.PodFailed }

func findCondition(list []v1.PodCondition, t v1.PodConditionType) *v1.PodCondition {
	for i := range list {
		if list[i].Type == t {
			return &list[i]
		}
	}
	return nil
}

func replaceOrAppend(list []v1.PodCondition, c v1.PodCondition) []v1.PodCondition {
	if old := findCondition(list, c.Type); old != nil {
		*old = c
		return list
	}
	return append(list, c)
}
