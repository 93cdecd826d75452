package compare

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletstatus "k8s.io/kubernetes/pkg/kubelet/status"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/status"
)

// probeResults answers berth's status computation by container ID; a
// container it does not name has no result yet.
type probeResults struct{ ready, started map[string]bool }

func (p probeResults) Readiness(id string) (bool, bool) { r, ok := p.ready[id]; return r, ok }
func (p probeResults) Startup(id string) (bool, bool)   { s, ok := p.started[id]; return s, ok }

// TestPodConditions: the Initialized, Ready and ContainersReady conditions
// berth computes, against upstream's generators (pkg/kubelet/status) given
// the container statuses, phase and other conditions berth computed: the
// same status, reason and message.
func TestPodConditions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	always := v1.ContainerRestartPolicyAlways
	specPod := func(policy v1.RestartPolicy, inits []v1.Container, names ...string) *v1.Pod {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid", Generation: 2},
			Spec: v1.PodSpec{RestartPolicy: policy, InitContainers: inits}}
		for _, n := range names {
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: n, Image: "img-" + n,
				ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}})
		}
		return p
	}
	initC := func(name string) v1.Container { return v1.Container{Name: name, Image: "img-" + name} }
	sidecarC := func(name string) v1.Container {
		return v1.Container{Name: name, Image: "img-" + name, RestartPolicy: &always,
			StartupProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}}
	}
	ctr := func(name string, state container.State, exit int32) *container.ContainerStatus {
		cs := &container.ContainerStatus{ID: "id-" + name, Name: name, SandboxID: "s1", State: state,
			Image: "img-" + name, ImageRef: "sha256:" + name, CreatedAt: t0, StartedAt: t0.Add(time.Second)}
		if state == container.StateExited {
			cs.ExitCode, cs.FinishedAt = exit, t0.Add(time.Minute)
		}
		return cs
	}
	runtimeOf := func(sandbox container.SandboxState, cs ...*container.ContainerStatus) *container.PodStatus {
		return &container.PodStatus{UID: "uid", Sandboxes: []*container.SandboxStatus{{ID: "s1", State: sandbox, CreatedAt: t0}}, Containers: cs}
	}
	ready := func(ids ...string) probeResults {
		p := probeResults{ready: map[string]bool{}, started: map[string]bool{}}
		for _, id := range ids {
			p.ready["id-"+id], p.started["id-"+id] = true, true
		}
		return p
	}
	withGate := func(p *v1.Pod, gate string, status v1.ConditionStatus) *v1.Pod {
		p.Spec.ReadinessGates = append(p.Spec.ReadinessGates, v1.PodReadinessGate{ConditionType: v1.PodConditionType(gate)})
		if status != "" {
			p.Status.Conditions = append(p.Status.Conditions, v1.PodCondition{Type: v1.PodConditionType(gate), Status: status})
		}
		return p
	}

	tests := []struct {
		name   string
		pod    *v1.Pod
		rt     *container.PodStatus
		probes status.Probes
	}{
		{"nothing yet", specPod(v1.RestartPolicyAlways, nil, "a", "b"), nil, ready()},
		{"sandbox only", specPod(v1.RestartPolicyAlways, nil, "a"), runtimeOf(container.SandboxReady), ready()},
		{"all ready", specPod(v1.RestartPolicyAlways, nil, "a", "b"),
			runtimeOf(container.SandboxReady, ctr("a", container.StateRunning, 0), ctr("b", container.StateRunning, 0)), ready("a", "b")},
		{"one not ready", specPod(v1.RestartPolicyAlways, nil, "a", "b"),
			runtimeOf(container.SandboxReady, ctr("a", container.StateRunning, 0), ctr("b", container.StateRunning, 0)), ready("a")},
		{"one missing", specPod(v1.RestartPolicyAlways, nil, "a", "b"),
			runtimeOf(container.SandboxReady, ctr("a", container.StateRunning, 0)), ready("a")},
		{"one exited", specPod(v1.RestartPolicyAlways, nil, "a", "b"),
			runtimeOf(container.SandboxReady, ctr("a", container.StateRunning, 0), ctr("b", container.StateExited, 1)), ready("a")},
		{"init running", specPod(v1.RestartPolicyAlways, []v1.Container{initC("i1"), initC("i2")}, "a"),
			runtimeOf(container.SandboxReady, ctr("i1", container.StateRunning, 0)), ready()},
		{"init done, second running", specPod(v1.RestartPolicyAlways, []v1.Container{initC("i1"), initC("i2")}, "a"),
			runtimeOf(container.SandboxReady, ctr("i2", container.StateRunning, 0), ctr("i1", container.StateExited, 0)), ready()},
		{"init failed", specPod(v1.RestartPolicyNever, []v1.Container{initC("i1")}, "a"),
			runtimeOf(container.SandboxReady, ctr("i1", container.StateExited, 1)), ready()},
		{"inits done, app running", specPod(v1.RestartPolicyAlways, []v1.Container{initC("i1")}, "a"),
			runtimeOf(container.SandboxReady, ctr("a", container.StateRunning, 0), ctr("i1", container.StateExited, 0)), ready("a")},
		{"sidecar not started", specPod(v1.RestartPolicyAlways, []v1.Container{sidecarC("s")}, "a"),
			runtimeOf(container.SandboxReady, ctr("s", container.StateRunning, 0)), ready()},
		{"sidecar started, app ready", specPod(v1.RestartPolicyAlways, []v1.Container{sidecarC("s")}, "a"),
			runtimeOf(container.SandboxReady, ctr("a", container.StateRunning, 0), ctr("s", container.StateRunning, 0)), ready("s", "a")},
		{"sidecar unready, app ready", specPod(v1.RestartPolicyAlways, []v1.Container{sidecarC("s")}, "a"),
			runtimeOf(container.SandboxReady, ctr("a", container.StateRunning, 0), ctr("s", container.StateRunning, 0)),
			probeResults{ready: map[string]bool{"id-a": true, "id-s": false}, started: map[string]bool{"id-s": true}}},
		{"succeeded", specPod(v1.RestartPolicyNever, nil, "a", "b"),
			runtimeOf(container.SandboxNotReady, ctr("a", container.StateExited, 0), ctr("b", container.StateExited, 0)), ready()},
		{"failed", specPod(v1.RestartPolicyNever, nil, "a", "b"),
			runtimeOf(container.SandboxNotReady, ctr("a", container.StateExited, 0), ctr("b", container.StateExited, 2)), ready()},
		{"succeeded with inits", specPod(v1.RestartPolicyOnFailure, []v1.Container{initC("i1")}, "a"),
			runtimeOf(container.SandboxNotReady, ctr("a", container.StateExited, 0), ctr("i1", container.StateExited, 0)), ready()},
		{"readiness gate missing", withGate(specPod(v1.RestartPolicyAlways, nil, "a"), "example.com/gate", ""),
			runtimeOf(container.SandboxReady, ctr("a", container.StateRunning, 0)), ready("a")},
		{"readiness gate false", withGate(specPod(v1.RestartPolicyAlways, nil, "a"), "example.com/gate", v1.ConditionFalse),
			runtimeOf(container.SandboxReady, ctr("a", container.StateRunning, 0)), ready("a")},
		{"readiness gate true", withGate(specPod(v1.RestartPolicyAlways, nil, "a"), "example.com/gate", v1.ConditionTrue),
			runtimeOf(container.SandboxReady, ctr("a", container.StateRunning, 0)), ready("a")},
		{"readiness gate and unready container", withGate(specPod(v1.RestartPolicyAlways, nil, "a"), "example.com/gate", v1.ConditionFalse),
			runtimeOf(container.SandboxReady, ctr("a", container.StateRunning, 0)), ready()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := status.Input{Pod: tt.pod, Old: tt.pod.Status, Runtime: tt.rt, Probes: tt.probes,
				Now: metav1.NewTime(t0.Add(time.Hour))}
			s := status.Compute(in)
			all := append(append([]v1.ContainerStatus{}, s.InitContainerStatuses...), s.ContainerStatuses...)
			var others []v1.PodCondition
			for _, c := range s.Conditions {
				if !status.KubeletOwnsCondition(c.Type) {
					others = append(others, c)
				}
			}
			old := tt.pod.Status
			initialized := kubeletstatus.GeneratePodInitializedCondition(tt.pod, &old, all, s.Phase)
			containersReady := kubeletstatus.GenerateContainersReadyCondition(tt.pod, &old, all, s.Phase)
			// Upstream computes Ready from the conditions generated before it.
			readyCond := kubeletstatus.GeneratePodReadyCondition(tt.pod, &old, append(others, initialized), all, s.Phase)
			for _, want := range []v1.PodCondition{initialized, readyCond, containersReady} {
				got := findCondition(s.Conditions, want.Type)
				if got == nil {
					t.Errorf("berth has no %s condition; upstream %s/%s: %s", want.Type, want.Status, want.Reason, want.Message)
					continue
				}
				if got.Status != want.Status || got.Reason != want.Reason || got.Message != want.Message {
					t.Errorf("%s: berth %s/%s: %q, upstream %s/%s: %q (phase %s)", want.Type,
						got.Status, got.Reason, got.Message, want.Status, want.Reason, want.Message, s.Phase)
				}
			}
		})
	}
}

func findCondition(list []v1.PodCondition, t v1.PodConditionType) *v1.PodCondition {
	for i := range list {
		if list[i].Type == t {
			return &list[i]
		}
	}
	return nil
}
