package apistatus

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/utils/ptr"
)

var (
	t0  = metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	t1  = metav1.NewTime(t0.Add(time.Minute))
	now = metav1.NewTime(t0.Add(time.Hour))
)

func cond(t v1.PodConditionType, s v1.ConditionStatus, at metav1.Time) v1.PodCondition {
	return v1.PodCondition{Type: t, Status: s, LastTransitionTime: at}
}

// running is a status as status.Compute makes it for a ready pod.
func running(at metav1.Time) v1.PodStatus {
	return v1.PodStatus{
		Phase:     v1.PodRunning,
		StartTime: &at,
		Conditions: []v1.PodCondition{
			cond(v1.PodReadyToStartContainers, v1.ConditionTrue, at),
			cond(v1.PodInitialized, v1.ConditionTrue, at),
			cond(v1.PodReady, v1.ConditionTrue, at),
			cond(v1.ContainersReady, v1.ConditionTrue, at),
			cond(v1.PodScheduled, v1.ConditionTrue, at),
		},
		ContainerStatuses: []v1.ContainerStatus{{Name: "c", Ready: true,
			State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: at}}}},
	}
}

func withConds(s v1.PodStatus, extra ...v1.PodCondition) v1.PodStatus {
	s.Conditions = append(extra, s.Conditions...)
	return s
}

func TestMerge(t *testing.T) {
	gated := func(p *v1.Pod) { p.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: "example.com/lb"}} }
	tests := []struct {
		name   string
		spec   func(*v1.Pod)
		api    v1.PodStatus
		ours   v1.PodStatus
		want   v1.PodStatus
		wantOK bool
	}{{
		name:   "pending to running: ours replaces the kubelet's fields",
		api:    v1.PodStatus{Phase: v1.PodPending, Conditions: []v1.PodCondition{cond(v1.PodScheduled, v1.ConditionTrue, t0)}},
		ours:   running(t1),
		want:   func() v1.PodStatus { s := running(t1); s.Conditions[4].LastTransitionTime = t0; return s }(),
		wantOK: true,
	}, {
		name: "conditions others own stay as the API has them; stale copies in ours are ignored",
		api: withConds(running(t0),
			cond("example.com/lb", v1.ConditionTrue, t1),
			cond(v1.DisruptionTarget, v1.ConditionTrue, t1)),
		ours:   withConds(running(t0), cond("example.com/lb", v1.ConditionFalse, t0)),
		want:   withConds(running(t0), cond("example.com/lb", v1.ConditionTrue, t1), cond(v1.DisruptionTarget, v1.ConditionTrue, t1)),
		wantOK: true,
	}, {
		name: "unchanged conditions and start time keep the API's times",
		api:  running(t0),
		ours: running(t1),
		want: func() v1.PodStatus {
			s := running(t0)
			s.ContainerStatuses = running(t1).ContainerStatuses // not the API's to keep
			return s
		}(),
		wantOK: true,
	}, {
		name:   "a terminal phase in the API is never replaced by a non-terminal one",
		api:    v1.PodStatus{Phase: v1.PodSucceeded},
		ours:   running(t1),
		wantOK: false,
	}, {
		name: "the first terminal phase stays",
		api:  v1.PodStatus{Phase: v1.PodFailed, Reason: "Evicted", Message: "low on memory"},
		ours: v1.PodStatus{Phase: v1.PodSucceeded, StartTime: &t0},
		want: v1.PodStatus{Phase: v1.PodFailed, Reason: "Evicted", Message: "low on memory", StartTime: &t0,
			Conditions: []v1.PodCondition{}},
		wantOK: true,
	}, {
		name:   "berth's DisruptionTarget waits for the terminal phase",
		api:    running(t0),
		ours:   withConds(running(t0), cond(v1.DisruptionTarget, v1.ConditionTrue, t1)),
		want:   running(t0),
		wantOK: true,
	}, {
		name: "berth's DisruptionTarget goes with the terminal phase",
		api:  running(t0),
		ours: v1.PodStatus{Phase: v1.PodFailed, StartTime: &t0,
			Conditions: []v1.PodCondition{cond(v1.DisruptionTarget, v1.ConditionTrue, t1)}},
		want: v1.PodStatus{Phase: v1.PodFailed, StartTime: &t0,
			Conditions: []v1.PodCondition{cond(v1.DisruptionTarget, v1.ConditionTrue, t1)}},
		wantOK: true,
	}, {
		name: "Ready follows the API's readiness gate: not True yet",
		spec: gated,
		api:  withConds(running(t0), cond("example.com/lb", v1.ConditionFalse, t0)),
		ours: withConds(running(t0), cond("example.com/lb", v1.ConditionTrue, t0)),
		want: func() v1.PodStatus {
			s := withConds(running(t0), cond("example.com/lb", v1.ConditionFalse, t0))
			s.Conditions[3] = v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse, LastTransitionTime: now,
				Reason:  "ReadinessGatesNotReady",
				Message: `the status of pod readiness gate "example.com/lb" is not "True", but False`}
			return s
		}(),
		wantOK: true,
	}, {
		name: "Ready follows the API's readiness gate: True now",
		spec: gated,
		api: func() v1.PodStatus {
			s := withConds(running(t0), cond("example.com/lb", v1.ConditionTrue, t1))
			s.Conditions[3] = v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse, LastTransitionTime: t0, Reason: "ReadinessGatesNotReady"}
			return s
		}(),
		ours: func() v1.PodStatus {
			s := running(t0)
			s.Conditions[2] = v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse, LastTransitionTime: t0, Reason: "ReadinessGatesNotReady"}
			return s
		}(),
		want: func() v1.PodStatus {
			s := withConds(running(t0), cond("example.com/lb", v1.ConditionTrue, t1))
			s.Conditions[3].LastTransitionTime = now
			return s
		}(),
		wantOK: true,
	}, {
		name: "resource claim statuses, volume health and a newer observed generation are kept",
		api: func() v1.PodStatus {
			s := running(t0)
			s.ObservedGeneration = 3
			s.ResourceClaimStatuses = []v1.PodResourceClaimStatus{{Name: "gpu", ResourceClaimName: ptr.To("gpu-1")}}
			s.VolumeHealth = []v1.PodVolumeHealth{{Name: "data"}}
			return s
		}(),
		ours: func() v1.PodStatus { s := running(t0); s.ObservedGeneration = 2; return s }(),
		want: func() v1.PodStatus {
			s := running(t0)
			s.ObservedGeneration = 3
			s.ResourceClaimStatuses = []v1.PodResourceClaimStatus{{Name: "gpu", ResourceClaimName: ptr.To("gpu-1")}}
			s.VolumeHealth = []v1.PodVolumeHealth{{Name: "data"}}
			return s
		}(),
		wantOK: true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := &v1.Pod{Status: tc.api}
			if tc.spec != nil {
				tc.spec(pod)
			}
			before := pod.DeepCopy()
			oursBefore := tc.ours.DeepCopy()
			got, ok := merge(pod, tc.ours, now)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if ok && !apiequality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("merged status differs (-want +got):\n%s", diff.Diff(tc.want, got))
			}
			if !apiequality.Semantic.DeepEqual(pod, before) || !apiequality.Semantic.DeepEqual(&tc.ours, oursBefore) {
				t.Errorf("merge modified its inputs")
			}
		})
	}
}

func TestStatusPatch(t *testing.T) {
	same, unchanged, err := statusPatch("uid-1", running(t0), running(t0))
	if err != nil || !unchanged {
		t.Fatalf("equal statuses: patch %s, unchanged %v, err %v", same, unchanged, err)
	}

	changed := running(t0)
	changed.ContainerStatuses[0].RestartCount = 1
	patch, unchanged, err := statusPatch("uid-1", running(t0), changed)
	if err != nil || unchanged {
		t.Fatalf("changed status: unchanged %v, err %v", unchanged, err)
	}
	for _, want := range []string{`"metadata":{"uid":"uid-1"}`, `"restartCount":1`} {
		if !strings.Contains(string(patch), want) {
			t.Errorf("patch %s lacks %s", patch, want)
		}
	}
	// A pod condition dropped by berth is deleted by the patch (merge key: type).
	dropped := running(t0)
	dropped.Conditions = dropped.Conditions[1:]
	patch, _, _ = statusPatch("uid-1", running(t0), dropped)
	if !strings.Contains(string(patch), `"$patch":"delete"`) {
		t.Errorf("patch %s does not delete the dropped condition", patch)
	}
}
