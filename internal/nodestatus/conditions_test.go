package nodestatus

import (
	"errors"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 = t0.Add(10 * time.Second)
)

// cond builds a condition with heartbeat hb and transition tr.
func cond(typ v1.NodeConditionType, status v1.ConditionStatus, reason, msg string, hb, tr time.Time) v1.NodeCondition {
	return v1.NodeCondition{Type: typ, Status: status, Reason: reason, Message: msg,
		LastHeartbeatTime: metav1.NewTime(hb), LastTransitionTime: metav1.NewTime(tr)}
}

// healthy is berth's full set of conditions for a healthy node, beating
// at hb, with the pressure conditions changed at prTr and Ready at rTr.
func healthy(hb, prTr, rTr time.Time) []v1.NodeCondition {
	return []v1.NodeCondition{
		cond(v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", hb, prTr),
		cond(v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", hb, prTr),
		cond(v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available", hb, prTr),
		cond(v1.NodeReady, v1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", hb, rTr),
	}
}

func TestConditions(t *testing.T) {
	runtimeDown := errors.New("container runtime is down")
	tests := []struct {
		name     string
		old      []v1.NodeCondition
		notReady error
		want     []v1.NodeCondition
	}{
		{
			name: "new node: pressure conditions then Ready, all changing now",
			old:  nil,
			want: healthy(t1, t1, t1),
		},
		{
			name: "unchanged: only the heartbeat moves",
			old:  healthy(t0, t0, t0),
			want: healthy(t1, t0, t0),
		},
		{
			name:     "runtime down: Ready turns False now, pressure untouched",
			old:      healthy(t0, t0, t0),
			notReady: runtimeDown,
			want: append(healthy(t1, t0, t0)[:3],
				cond(v1.NodeReady, v1.ConditionFalse, "KubeletNotReady", "container runtime is down", t1, t1)),
		},
		{
			name:     "still down with another message: transition time kept",
			old:      append(healthy(t0, t0, t0)[:3], cond(v1.NodeReady, v1.ConditionFalse, "KubeletNotReady", "old reason", t0, t0)),
			notReady: runtimeDown,
			want: append(healthy(t1, t0, t0)[:3],
				cond(v1.NodeReady, v1.ConditionFalse, "KubeletNotReady", "container runtime is down", t1, t0)),
		},
		{
			// The node lifecycle controller sets Unknown when heartbeats stop.
			name: "Unknown from the controller: back to True now",
			old: []v1.NodeCondition{
				cond(v1.NodeMemoryPressure, v1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", t0, t0),
				cond(v1.NodeDiskPressure, v1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", t0, t0),
				cond(v1.NodePIDPressure, v1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", t0, t0),
				cond(v1.NodeReady, v1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", t0, t0),
			},
			want: healthy(t1, t1, t1),
		},
		{
			name: "foreign conditions kept in place, missing ones appended",
			old: []v1.NodeCondition{
				cond(v1.NodeNetworkUnavailable, v1.ConditionFalse, "RouteCreated", "routes created", t0, t0),
				cond(v1.NodeReady, v1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", t0, t0),
			},
			want: []v1.NodeCondition{
				cond(v1.NodeNetworkUnavailable, v1.ConditionFalse, "RouteCreated", "routes created", t0, t0),
				cond(v1.NodeReady, v1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", t1, t0),
				cond(v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", t1, t1),
				cond(v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", t1, t1),
				cond(v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available", t1, t1),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := append([]v1.NodeCondition(nil), tt.old...)
			got := conditions(pressureConditions(tt.old, t1, nil), t1, tt.notReady)
			if !apiequality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("conditions:\n got %+v\nwant %+v", got, tt.want)
			}
			if !apiequality.Semantic.DeepEqual(tt.old, before) {
				t.Error("conditions changed its input")
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	full := resources(map[string]string{"cpu": "1", "memory": "1Gi", "pods": "110", "ephemeral-storage": "1Gi"})
	tests := []struct {
		name     string
		health   error
		capacity v1.ResourceList
		want     string // "" means ready
	}{
		{name: "healthy", capacity: full, want: ""},
		{name: "health error", health: errors.New("PLEG is not healthy: relist has not run for 3m0s"), capacity: full, want: "PLEG is not healthy: relist has not run for 3m0s"},
		{
			name:     "missing capacity",
			capacity: resources(map[string]string{"cpu": "1", "pods": "110"}),
			want:     "missing node capacity for resources: memory, ephemeral-storage",
		},
		{
			name:     "both, aggregated as upstream",
			health:   errors.New("container runtime is down"),
			capacity: resources(map[string]string{"cpu": "1", "memory": "1Gi", "pods": "110"}),
			want:     "[container runtime is down, missing node capacity for resources: ephemeral-storage]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := readiness(tt.capacity, tt.health)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("readiness = %q, want %q", got, tt.want)
			}
		})
	}
}
