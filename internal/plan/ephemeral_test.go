package plan

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// withEphemeral adds ephemeral containers, as `kubectl debug` does through
// the ephemeralcontainers subresource.
func withEphemeral(names ...string) podOpt {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, v1.EphemeralContainer{
				EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: n, Image: "busybox"},
				TargetContainerName:      "a",
			})
		}
	}
}

// Ephemeral containers as upstream's computePodActions plans them.
func TestComputePodActionsEphemeral(t *testing.T) {
	always, never := v1.RestartPolicyAlways, v1.RestartPolicyNever
	both := func(p *v1.Pod) *container.PodStatus {
		return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
	}
	rows := []struct {
		name string
		pod  *v1.Pod
		st   func(p *v1.Pod) *container.PodStatus
		want PodActions
	}{
		{
			name: "added to a running pod: start it, nothing else changes",
			pod:  testPod(always, withEphemeral("debug")), st: both,
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, EphemeralContainersToStart: []int{0}},
		},
		{
			name: "a second one: only the new one starts",
			pod:  testPod(always, withEphemeral("debug", "debug2")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "debug", "c3", "s1", running, 0),
					ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, EphemeralContainersToStart: []int{1}},
		},
		{
			name: "running: nothing to do, no hash compared",
			pod:  testPod(always, withEphemeral("debug")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), withHash(ctr(p, "debug", "c3", "s1", running, 0), 7),
					ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "exited, even with a failure under Always: never restarted",
			pod:  testPod(always, withEphemeral("debug")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "debug", "c3", "s1", exited, 1),
					ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "pod still initializing: started beside the init container",
			pod:  testPod(always, withInits("i0"), withEphemeral("debug")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i0", "c1", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, EphemeralContainersToStart: []int{0}},
		},
		{
			name: "ran in an older sandbox: not started in the new one",
			pod:  testPod(always, withEphemeral("debug")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s2", container.SandboxReady, 1), sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "a", "c4", "s2", running, 0), ctr(p, "b", "c5", "s2", running, 0),
					ctr(p, "debug", "c3", "s1", exited, 137))
			},
			want: PodActions{SandboxID: "s2", Attempt: 1, NextInitContainer: NoInit},
		},
		{
			name: "no sandbox: a new one starts the app containers only",
			pod:  testPod(always, withEphemeral("debug")),
			st:   func(*v1.Pod) *container.PodStatus { return nil },
			want: PodActions{CreateSandbox: true, NextInitContainer: NoInit, ContainersToStart: []int{0, 1}},
		},
		{
			name: "pod done: killed, no ephemeral container started",
			pod:  testPod(never, withEphemeral("debug")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", exited, 0))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "a running ephemeral container is in the spec: not killed",
			pod:  testPod(always, withEphemeral("debug")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "debug", "c3", "s1", running, 0),
					ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got := ComputePodActions(r.pod, r.st(r.pod), nil)
			if !reflect.DeepEqual(got, r.want) {
				t.Errorf("got  %+v\nwant %+v", got, r.want)
			}
		})
	}
}

// Adding an ephemeral container changes no other container's hash, so it
// restarts nothing.
func TestEphemeralContainerKeepsHashes(t *testing.T) {
	before := testPod(always(), withInits("i0"))
	after := testPod(always(), withInits("i0"), withEphemeral("debug"))
	for i := range before.Spec.Containers {
		if container.HashContainer(&before.Spec.Containers[i]) != container.HashContainer(&after.Spec.Containers[i]) {
			t.Errorf("hash of %s changed", before.Spec.Containers[i].Name)
		}
	}
	st := rt(ready("s1"), ctr(before, "a", "c1", "s1", running, 0), ctr(before, "b", "c2", "s1", running, 0),
		ctr(before, "i0", "c0", "s1", exited, 0))
	got := ComputePodActions(after, st, nil)
	want := PodActions{SandboxID: "s1", NextInitContainer: NoInit, EphemeralContainersToStart: []int{0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
