package nodestatus

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

func TestPressureConditions(t *testing.T) {
	t0, t1 := time.Unix(1000, 0), time.Unix(1010, 0)
	old := pressureConditions(nil, t0, nil)
	got := pressureConditions(old, t1, []v1.NodeConditionType{v1.NodeMemoryPressure, v1.NodePIDPressure})
	want := map[v1.NodeConditionType]struct {
		status  v1.ConditionStatus
		reason  string
		changed bool
	}{
		v1.NodeMemoryPressure: {v1.ConditionTrue, "KubeletHasInsufficientMemory", true},
		v1.NodeDiskPressure:   {v1.ConditionFalse, "KubeletHasNoDiskPressure", false},
		v1.NodePIDPressure:    {v1.ConditionTrue, "KubeletHasInsufficientPID", true},
	}
	if len(got) != 3 {
		t.Fatalf("conditions %+v", got)
	}
	for _, c := range got {
		w := want[c.Type]
		wantTransition := t0
		if w.changed {
			wantTransition = t1
		}
		if c.Status != w.status || c.Reason != w.reason || !c.LastTransitionTime.Time.Equal(wantTransition) || !c.LastHeartbeatTime.Time.Equal(t1) {
			t.Errorf("%s: %+v, want %s %s transition %v", c.Type, c, w.status, w.reason, wantTransition)
		}
	}
	if old[0].Status != v1.ConditionFalse {
		t.Fatal("old conditions modified")
	}
}
