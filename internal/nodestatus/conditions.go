package nodestatus

import (
	"errors"
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// conditions returns the node's conditions at now from the ones it has
// (with the pressure conditions set by pressureConditions): Ready is
// updated in place or appended, others are kept. A condition's
// lastTransitionTime moves only when its status changes; every one of
// berth's conditions gets now as lastHeartbeatTime. notReady, when not
// nil, makes Ready False with its message.
func conditions(old []v1.NodeCondition, now time.Time, notReady error) []v1.NodeCondition {
	t := metav1.NewTime(now)
	conds := make([]v1.NodeCondition, len(old))
	copy(conds, old)
	set := func(c v1.NodeCondition) { conds = setCondition(conds, c, t) }
	// Ready comes last in a new list: old control planes relied on it.
	ready := v1.NodeCondition{
		Type:    v1.NodeReady,
		Status:  v1.ConditionTrue,
		Reason:  "KubeletReady",
		Message: "kubelet is posting ready status",
	}
	if notReady != nil {
		ready.Status = v1.ConditionFalse
		ready.Reason = "KubeletNotReady"
		ready.Message = notReady.Error()
	}
	set(ready)
	return conds
}

// setCondition updates c's type in conds, or appends it: now is its
// heartbeat, and its transition time unless the status stays the same.
func setCondition(conds []v1.NodeCondition, c v1.NodeCondition, now metav1.Time) []v1.NodeCondition {
	c.LastHeartbeatTime = now
	c.LastTransitionTime = now
	for i := range conds {
		if conds[i].Type != c.Type {
			continue
		}
		if conds[i].Status == c.Status {
			c.LastTransitionTime = conds[i].LastTransitionTime
		}
		conds[i] = c
		return conds
	}
	return append(conds, c)
}

// readiness is why the node is not ready, or nil, in upstream's order:
// the health check's error (runtime down, PLEG), the runtime's and the
// pod network's readiness from its CRI Status, and the capacities the node
// cannot report (upstream requires cpu, memory, pods and
// ephemeral-storage). Several reasons read as upstream's aggregate error
// does: "[a, b]".
func readiness(capacity v1.ResourceList, problems ...error) error {
	var errs []error
	for _, err := range problems {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var missing []string
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourcePods, v1.ResourceEphemeralStorage} {
		if _, ok := capacity[name]; !ok {
			missing = append(missing, string(name))
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("missing node capacity for resources: %s", strings.Join(missing, ", ")))
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New("[" + strings.Join(msgs, ", ") + "]")
}

// readyMessage is the message of the node's Ready condition.
func readyMessage(status *v1.NodeStatus) string {
	for _, c := range status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Message
		}
	}
	return ""
}

// isReady reports whether the node's Ready condition is True.
func isReady(status *v1.NodeStatus) bool {
	for _, c := range status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}
