package nodestatus

import (
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pressureConditions sets MemoryPressure, DiskPressure and PIDPressure in
// conds from the eviction manager's verdict (pressure lists those that are
// True), with upstream's reasons and messages. conds is not modified.
func pressureConditions(conds []v1.NodeCondition, now time.Time, pressure []v1.NodeConditionType) []v1.NodeCondition {
	t := metav1.NewTime(now)
	out := slices.Clone(conds)
	for _, p := range []struct {
		typ                   v1.NodeConditionType
		trueReason, trueMsg   string
		falseReason, falseMsg string
	}{
		{v1.NodeMemoryPressure, "KubeletHasInsufficientMemory", "kubelet has insufficient memory available",
			"KubeletHasSufficientMemory", "kubelet has sufficient memory available"},
		{v1.NodeDiskPressure, "KubeletHasDiskPressure", "kubelet has disk pressure",
			"KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
		{v1.NodePIDPressure, "KubeletHasInsufficientPID", "kubelet has insufficient PID available",
			"KubeletHasSufficientPID", "kubelet has sufficient PID available"},
	} {
		c := v1.NodeCondition{Type: p.typ, Status: v1.ConditionFalse, Reason: p.falseReason, Message: p.falseMsg}
		if slices.Contains(pressure, p.typ) {
			c.Status, c.Reason, c.Message = v1.ConditionTrue, p.trueReason, p.trueMsg
		}
		out = setCondition(out, c, t)
	}
	return out
}
