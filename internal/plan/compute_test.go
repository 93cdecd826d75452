package plan

import (
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/internal/container"
)

// The fixtures: a pod with init containers "i0", "i1" (optional) and app
// containers "a", "b"; runtime containers are given newest first.

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type podOpt func(*v1.Pod)

func testPod(policy v1.RestartPolicy, opts ...podOpt) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid"},
		Spec: v1.PodSpec{
			RestartPolicy: policy,
			Containers: []v1.Container{
				{Name: "a", Image: "busybox"},
				{Name: "b", Image: "busybox"},
			},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withInits(names ...string) podOpt {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n, Image: "busybox"})
		}
	}
}

func withSidecar(name string) podOpt {
	always := v1.ContainerRestartPolicyAlways
	return func(p *v1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: name, Image: "busybox", RestartPolicy: &always})
	}
}

func onlyA(p *v1.Pod) { p.Spec.Containers = p.Spec.Containers[:1] }

// startupOn gives the named container (init or app) a startup probe.
func startupOn(name string) podOpt {
	return func(p *v1.Pod) {
		for _, list := range [][]v1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for i := range list {
				if list[i].Name == name {
					list[i].StartupProbe = &v1.Probe{FailureThreshold: 3}
				}
			}
		}
	}
}

// fakeProbes holds results by container ID; a missing ID is unknown.
type fakeProbes struct {
	live, started map[string]bool
}

func (f fakeProbes) Liveness(id string) (bool, bool) { v, ok := f.live[id]; return v, ok }
func (f fakeProbes) Startup(id string) (bool, bool)  { v, ok := f.started[id]; return v, ok }

func live(id string, healthy bool) fakeProbes {
	return fakeProbes{live: map[string]bool{id: healthy}}
}

func started(id string, ok bool) fakeProbes {
	return fakeProbes{started: map[string]bool{id: ok}}
}

func deleted(p *v1.Pod) {
	ts := metav1.NewTime(t0)
	p.DeletionTimestamp = &ts
}

func sb(id string, state container.SandboxState, attempt uint32) *container.SandboxStatus {
	return &container.SandboxStatus{ID: id, State: state, Attempt: attempt}
}

// ctr is a runtime container whose hash matches the spec of the same name
// in pod p (or 0 when p has none).
func ctr(p *v1.Pod, name, id, sandbox string, state container.State, exit int32) *container.ContainerStatus {
	c := &container.ContainerStatus{ID: id, Name: name, SandboxID: sandbox, State: state, ExitCode: exit}
	for _, list := range [][]v1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				c.Hash = container.HashContainer(&list[i])
			}
		}
	}
	return c
}

func withReason(c *container.ContainerStatus, reason string) *container.ContainerStatus {
	c.Reason = reason
	return c
}

func withHash(c *container.ContainerStatus, h uint64) *container.ContainerStatus {
	c.Hash = h
	return c
}

// rt builds a PodStatus; sandboxes and containers are listed newest first.
func rt(sandboxes []*container.SandboxStatus, containers ...*container.ContainerStatus) *container.PodStatus {
	for i, s := range sandboxes {
		s.CreatedAt = t0.Add(-time.Duration(i) * time.Minute)
	}
	for i, c := range containers {
		c.CreatedAt = t0.Add(-time.Duration(i) * time.Second)
	}
	return &container.PodStatus{UID: "uid", Name: "p", Namespace: "ns", Sandboxes: sandboxes, Containers: containers}
}

func ready(id string) []*container.SandboxStatus {
	return []*container.SandboxStatus{sb(id, container.SandboxReady, 0)}
}

const (
	running = container.StateRunning
	exited  = container.StateExited
	created = container.StateCreated
	unknown = container.StateUnknown
)

func kills(kv ...string) map[string]KillInfo {
	m := map[string]KillInfo{}
	for i := 0; i+3 < len(kv)+1; i += 4 {
		m[kv[i]] = KillInfo{Name: kv[i+1], Reason: kv[i+2], Message: kv[i+3]}
	}
	return m
}

func TestComputePodActions(t *testing.T) {
	always, onFailure, never := v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever

	type row struct {
		name   string
		pod    *v1.Pod
		st     func(p *v1.Pod) *container.PodStatus
		probes Probes
		want   PodActions
	}
	none := func(*v1.Pod) *container.PodStatus { return nil }
	init2 := withInits("i0", "i1")

	rows := []row{
		// --- sandbox ---
		{
			name: "new pod: create sandbox, start every app container",
			pod:  testPod(always), st: none,
			want: PodActions{CreateSandbox: true, NextInitContainer: NoInit, ContainersToStart: []int{0, 1}},
		},
		{
			name: "new pod with init containers: create sandbox, start the first init container",
			pod:  testPod(always, init2), st: none,
			want: PodActions{CreateSandbox: true, NextInitContainer: 0},
		},
		{
			name: "empty runtime status behaves like none",
			pod:  testPod(always), st: func(*v1.Pod) *container.PodStatus { return rt(nil) },
			want: PodActions{CreateSandbox: true, NextInitContainer: NoInit, ContainersToStart: []int{0, 1}},
		},
		{
			name: "newest sandbox not ready: kill, new sandbox with the next attempt",
			pod:  testPod(always),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s2", container.SandboxNotReady, 2), sb("s1", container.SandboxNotReady, 1)},
					ctr(p, "a", "c1", "s2", exited, 0), ctr(p, "b", "c2", "s2", exited, 0))
			},
			want: PodActions{KillPod: true, CreateSandbox: true, Attempt: 3, NextInitContainer: NoInit, ContainersToStart: []int{0, 1}},
		},
		{
			name: "newest sandbox not ready while an older one is: kill, new sandbox",
			pod:  testPod(always),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s2", container.SandboxNotReady, 1), sb("s1", container.SandboxReady, 0)},
					ctr(p, "a", "c1", "s1", running, 0))
			},
			want: PodActions{KillPod: true, CreateSandbox: true, Attempt: 2, NextInitContainer: NoInit, ContainersToStart: []int{0, 1}},
		},
		{
			name: "two ready sandboxes: kill, new sandbox",
			pod:  testPod(always),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s2", container.SandboxReady, 1), sb("s1", container.SandboxReady, 0)},
					ctr(p, "a", "c1", "s2", running, 0), ctr(p, "b", "c2", "s2", running, 0))
			},
			want: PodActions{KillPod: true, CreateSandbox: true, Attempt: 2, NextInitContainer: NoInit, ContainersToStart: []int{0, 1}},
		},
		{
			name: "sandbox died, init containers: start over from the first",
			pod:  testPod(always, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "a", "c3", "s1", exited, 0), ctr(p, "i1", "c2", "s1", exited, 0), ctr(p, "i0", "c1", "s1", exited, 0))
			},
			want: PodActions{KillPod: true, CreateSandbox: true, Attempt: 1, NextInitContainer: 0},
		},
		{
			name: "Never, sandbox died after containers ran: no new sandbox, nothing to release",
			pod:  testPod(never),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", exited, 1))
			},
			want: PodActions{NextInitContainer: NoInit, Attempt: 1},
		},
		{
			name: "Never, sandbox died but a container still runs: kill it, no new sandbox",
			pod:  testPod(never),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", exited, 1))
			},
			want: PodActions{KillPod: true, NextInitContainer: NoInit, Attempt: 1},
		},
		{
			name: "Never, sandbox died before any container was made: retry the sandbox",
			pod:  testPod(never),
			st: func(*v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 0)})
			},
			want: PodActions{KillPod: true, CreateSandbox: true, Attempt: 1, NextInitContainer: NoInit, ContainersToStart: []int{0, 1}},
		},
		{
			name: "OnFailure, sandbox died, every container succeeded: pod is done, no sandbox",
			pod:  testPod(onFailure),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", exited, 0))
			},
			want: PodActions{NextInitContainer: NoInit, Attempt: 1},
		},
		{
			name: "OnFailure, sandbox died: new sandbox restarts only the failed container",
			pod:  testPod(onFailure),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", exited, 2))
			},
			want: PodActions{KillPod: true, CreateSandbox: true, Attempt: 1, NextInitContainer: NoInit, ContainersToStart: []int{1}},
		},
		{
			name: "OnFailure, sandbox died during init (no app container yet): start over",
			pod:  testPod(onFailure, init2, onlyA),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "i0", "c1", "s1", exited, 0))
			},
			want: PodActions{KillPod: true, CreateSandbox: true, Attempt: 1, NextInitContainer: 0},
		},
		{
			name: "Always, sandbox died after all succeeded: everything runs again",
			pod:  testPod(always),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 4)},
					ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", exited, 0))
			},
			want: PodActions{KillPod: true, CreateSandbox: true, Attempt: 5, NextInitContainer: NoInit, ContainersToStart: []int{0, 1}},
		},

		// --- init containers ---
		{
			name: "ready sandbox, no init container ran: start the first",
			pod:  testPod(always, init2),
			st:   func(*v1.Pod) *container.PodStatus { return rt(ready("s1")) },
			want: PodActions{SandboxID: "s1", NextInitContainer: 0},
		},
		{
			name: "init container running: wait",
			pod:  testPod(always, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i0", "c1", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "first init container succeeded: start the second",
			pod:  testPod(always, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i0", "c1", "s1", exited, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 1},
		},
		{
			name: "last init container succeeded: start the app containers",
			pod:  testPod(always, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i1", "c2", "s1", exited, 0), ctr(p, "i0", "c1", "s1", exited, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0, 1}},
		},
		{
			name: "earlier init container garbage-collected: the last one decides",
			pod:  testPod(always, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i1", "c2", "s1", exited, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0, 1}},
		},
		{
			name: "init container failed, OnFailure: restart it",
			pod:  testPod(onFailure, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i0", "c1", "s1", exited, 1))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 0},
		},
		{
			name: "init container failed, Always: restart it",
			pod:  testPod(always, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i1", "c2", "s1", exited, 3), ctr(p, "i0", "c1", "s1", exited, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 1},
		},
		{
			name: "init container failed, Never: the pod failed, kill it",
			pod:  testPod(never, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i0", "c1", "s1", exited, 1))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "init container OOM-killed with exit 0 counts as failed",
			pod:  testPod(never, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), withReason(ctr(p, "i0", "c1", "s1", exited, 0), "OOMKilled"))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "init container in unknown state, Always: kill and restart it",
			pod:  testPod(always, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i0", "c1", "s1", unknown, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 0,
				ContainersToKill: kills("c1", "i0", ReasonUnknown, `Init container is in "unknown" state, try killing it before restart`)},
		},
		{
			name: "init container in unknown state, Never: the pod failed",
			pod:  testPod(never, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i0", "c1", "s1", unknown, 0))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "init container stuck in created: start it again",
			pod:  testPod(never, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i0", "c1", "s1", created, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 0},
		},
		{
			name: "init containers of an older sandbox don't count",
			pod:  testPod(always, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s2", container.SandboxReady, 1), sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "i1", "c2", "s1", exited, 0), ctr(p, "i0", "c1", "s1", exited, 0))
			},
			want: PodActions{SandboxID: "s2", Attempt: 1, NextInitContainer: 0},
		},
		{
			name: "app container in the sandbox: initialized, even with init containers gone",
			pod:  testPod(always, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c3", "s1", running, 0), ctr(p, "b", "c4", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "init done, one app container exited under OnFailure with 0: keep the other",
			pod:  testPod(onFailure, init2),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c3", "s1", exited, 0), ctr(p, "b", "c4", "s1", running, 0),
					ctr(p, "i1", "c2", "s1", exited, 0), ctr(p, "i0", "c1", "s1", exited, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},

		// --- sidecars (restartable init containers), minimal ---
		{
			name: "sidecar not started: start it first",
			pod:  testPod(always, withSidecar("side"), withInits("i1")),
			st:   func(*v1.Pod) *container.PodStatus { return rt(ready("s1")) },
			want: PodActions{SandboxID: "s1", NextInitContainer: 0},
		},
		{
			name: "sidecar running: start the next init container",
			pod:  testPod(always, withSidecar("side"), withInits("i1")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "side", "c1", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 1},
		},
		{
			name: "sidecar running as the last init container: start the app containers",
			pod:  testPod(always, withInits("i0"), withSidecar("side")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "side", "c2", "s1", running, 0), ctr(p, "i0", "c1", "s1", exited, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0, 1}},
		},
		{
			name: "sidecar exited after initialization: restart it, keep the app containers",
			pod:  testPod(always, withSidecar("side"), withInits("i1")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c3", "s1", running, 0), ctr(p, "b", "c4", "s1", running, 0),
					ctr(p, "i1", "c2", "s1", exited, 0), ctr(p, "side", "c1", "s1", exited, 1))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 0},
		},
		{
			name: "sidecar spec changed: kill and restart it",
			pod:  testPod(always, withSidecar("side")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c3", "s1", running, 0), ctr(p, "b", "c4", "s1", running, 0),
					withHash(ctr(p, "side", "c1", "s1", running, 0), 42))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 0,
				ContainersToKill: kills("c1", "side", ReasonSpecChanged, "Init container side definition changed")},
		},
		{
			name: "app containers done under Never, sidecar still running: kill the pod, don't restart sidecars",
			pod:  testPod(never, withSidecar("side")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c3", "s1", exited, 0), ctr(p, "b", "c4", "s1", exited, 0),
					ctr(p, "side", "c1", "s1", running, 0))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},

		// --- sidecars and probes ---
		{
			name: "sidecar startup probe undecided: wait before the next init container",
			pod:  testPod(always, withSidecar("side"), startupOn("side"), withInits("i1")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "side", "c1", "s1", running, 0))
			},
			probes: fakeProbes{},
			want:   PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "sidecar startup probe passed: start the next init container",
			pod:  testPod(always, withSidecar("side"), startupOn("side"), withInits("i1")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "side", "c1", "s1", running, 0))
			},
			probes: started("c1", true),
			want:   PodActions{SandboxID: "s1", NextInitContainer: 1},
		},
		{
			name: "sidecar startup probe failed: kill and restart it",
			pod:  testPod(always, withSidecar("side"), startupOn("side"), withInits("i1")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "side", "c1", "s1", running, 0))
			},
			probes: started("c1", false),
			want: PodActions{SandboxID: "s1", NextInitContainer: 0,
				ContainersToKill: kills("c1", "side", ReasonStartupProbe, "Init container side failed startup probe")},
		},
		{
			name: "sidecar without a startup probe is started once it runs, prober or not",
			pod:  testPod(always, withSidecar("side"), withInits("i1")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "side", "c1", "s1", running, 0))
			},
			probes: fakeProbes{},
			want:   PodActions{SandboxID: "s1", NextInitContainer: 1},
		},
		{
			name: "last init container is a sidecar still starting: app containers wait",
			pod:  testPod(always, withInits("i0"), withSidecar("side"), startupOn("side")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "side", "c2", "s1", running, 0), ctr(p, "i0", "c1", "s1", exited, 0))
			},
			probes: fakeProbes{},
			want:   PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "last init container is a sidecar that started: start the app containers",
			pod:  testPod(always, withInits("i0"), withSidecar("side"), startupOn("side")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "side", "c2", "s1", running, 0), ctr(p, "i0", "c1", "s1", exited, 0))
			},
			probes: started("c2", true),
			want:   PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0, 1}},
		},
		{
			name: "two sidecars: the second starts only once the first started",
			pod:  testPod(always, withSidecar("s0"), startupOn("s0"), withSidecar("s1")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "s0", "c1", "s1", running, 0))
			},
			probes: fakeProbes{},
			want:   PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "sidecar failed its liveness probe after initialization: restart it, keep the app containers",
			pod:  testPod(always, withSidecar("side")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c3", "s1", running, 0), ctr(p, "b", "c4", "s1", running, 0),
					ctr(p, "side", "c1", "s1", running, 0))
			},
			probes: live("c1", false),
			want: PodActions{SandboxID: "s1", NextInitContainer: 0,
				ContainersToKill: kills("c1", "side", ReasonLivenessProbe, "Init container side failed liveness probe")},
		},
		{
			name: "sidecar exited under Never: restarted all the same",
			pod:  testPod(never, withSidecar("side")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c3", "s1", running, 0), ctr(p, "b", "c4", "s1", exited, 0),
					ctr(p, "side", "c1", "s1", exited, 1))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 0},
		},
		{
			name: "sidecar and an app container both to restart: one step starts both",
			pod:  testPod(always, withSidecar("side")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c3", "s1", exited, 1), ctr(p, "b", "c4", "s1", running, 0),
					ctr(p, "side", "c1", "s1", exited, 1))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 0, ContainersToStart: []int{0}},
		},
		{
			name: "OnFailure, app containers succeeded, sidecar running: the pod is complete, kill it",
			pod:  testPod(onFailure, withSidecar("side")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c3", "s1", exited, 0), ctr(p, "b", "c4", "s1", exited, 0),
					ctr(p, "side", "c1", "s1", running, 0))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "Never, app containers done, sidecar crashed meanwhile: kill the pod, no sidecar restart",
			pod:  testPod(never, withSidecar("side")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c3", "s1", exited, 0), ctr(p, "b", "c4", "s1", exited, 1),
					ctr(p, "side", "c1", "s1", exited, 2))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "complete pod with its sidecars stopped and sandbox released: nothing to do",
			pod:  testPod(never, withSidecar("side")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "a", "c3", "s1", exited, 0), ctr(p, "b", "c4", "s1", exited, 0), ctr(p, "side", "c1", "s1", exited, 137))
			},
			want: PodActions{NextInitContainer: NoInit, Attempt: 1},
		},

		// --- app containers and probes ---
		{
			name: "liveness failed under Always: kill and restart",
			pod:  testPod(always),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			probes: live("c1", false),
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0},
				ContainersToKill: kills("c1", "a", ReasonLivenessProbe, "Container a failed liveness probe, will be restarted")},
		},
		{
			name: "liveness failed under OnFailure: kill and restart",
			pod:  testPod(onFailure),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			probes: live("c2", false),
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{1},
				ContainersToKill: kills("c2", "b", ReasonLivenessProbe, "Container b failed liveness probe, will be restarted")},
		},
		{
			name: "liveness failed under Never: kill, no restart",
			pod:  testPod(never),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			probes: live("c1", false),
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit,
				ContainersToKill: kills("c1", "a", ReasonLivenessProbe, "Container a failed liveness probe")},
		},
		{
			name: "liveness failed under Never on the last running container: the pod is done",
			pod:  testPod(never, onlyA),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0))
			},
			probes: live("c1", false),
			want:   PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "liveness healthy or not known yet: keep",
			pod:  testPod(always),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			probes: live("c1", true),
			want:   PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "results of an older container don't count",
			pod:  testPod(always),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c5", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			probes: live("c1", false),
			want:   PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "startup probe failed: kill and restart",
			pod:  testPod(always, startupOn("a")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			probes: started("c1", false),
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0},
				ContainersToKill: kills("c1", "a", ReasonStartupProbe, "Container a failed startup probe, will be restarted")},
		},
		{
			name: "startup probe undecided: keep",
			pod:  testPod(always, startupOn("a")),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			probes: fakeProbes{},
			want:   PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "spec change and failed liveness: the spec change is the reason",
			pod:  testPod(never, onlyA),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), withHash(ctr(p, "a", "c1", "s1", running, 0), 7))
			},
			probes: live("c1", false),
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0},
				ContainersToKill: kills("c1", "a", ReasonSpecChanged, "Container a definition changed, will be restarted")},
		},
		{
			name: "pod being deleted: a failed liveness probe kills without restart",
			pod:  testPod(always, deleted),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			probes: live("c1", false),
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit,
				ContainersToKill: kills("c1", "a", ReasonLivenessProbe, "Container a failed liveness probe")},
		},

		// --- app containers ---
		{
			name: "everything running as specified: nothing to do",
			pod:  testPod(always),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "container never created: start it",
			pod:  testPod(always),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{1}},
		},
		{
			name: "exited 0 under Always: restart",
			pod:  testPod(always),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0}},
		},
		{
			name: "restart policy unset behaves as Always",
			pod:  testPod(""),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0}},
		},
		{
			name: "exited non-zero under OnFailure: restart",
			pod:  testPod(onFailure),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", exited, 137), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0}},
		},
		{
			name: "exited 0 under OnFailure: leave it",
			pod:  testPod(onFailure),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "exited non-zero under Never: leave it",
			pod:  testPod(never),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", exited, 1), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "the newest container of a name decides",
			pod:  testPod(onFailure, onlyA),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c2", "s1", exited, 0), ctr(p, "a", "c1", "s1", exited, 1))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "all exited under Never: the pod is done, kill it to release the sandbox",
			pod:  testPod(never),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", exited, 1))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "all succeeded under OnFailure: the pod is done",
			pod:  testPod(onFailure),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", exited, 0))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "done pod whose sandbox is already stopped: nothing to do",
			pod:  testPod(onFailure),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", exited, 0))
			},
			want: PodActions{NextInitContainer: NoInit, Attempt: 1},
		},
		{
			name: "spec changed: kill and start again",
			pod:  testPod(always),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), withHash(ctr(p, "a", "c1", "s1", running, 0), 7), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0},
				ContainersToKill: kills("c1", "a", ReasonSpecChanged, "Container a definition changed, will be restarted")},
		},
		{
			name: "spec changed under Never: replaced all the same",
			pod:  testPod(never, onlyA),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), withHash(ctr(p, "a", "c1", "s1", running, 0), 7))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0},
				ContainersToKill: kills("c1", "a", ReasonSpecChanged, "Container a definition changed, will be restarted")},
		},
		{
			name: "unknown state: kill, then start, even under Never",
			pod:  testPod(never),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", unknown, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0},
				ContainersToKill: kills("c1", "a", ReasonUnknown, `Container is in "unknown" state, try killing it before restart`)},
		},
		{
			name: "created but not started: start again",
			pod:  testPod(never),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", created, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0}},
		},
		{
			name: "running container not in the spec: kill it",
			pod:  testPod(always),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0),
					ctr(p, "old", "c0", "s1", running, 0), ctr(p, "gone", "c9", "s1", exited, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit,
				ContainersToKill: kills("c0", "old", ReasonNotInSpec, "Container old is not in the pod spec")},
		},
		{
			name: "pod being deleted: nothing restarts, the pod is killed",
			pod:  testPod(always, deleted),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", exited, 1), ctr(p, "b", "c2", "s1", exited, 0))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "kills are subsumed by KillPod",
			pod:  testPod(never, onlyA, deleted),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "old", "c0", "s1", running, 0))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit},
		},
	}

	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got := ComputePodActions(r.pod, r.st(r.pod), r.probes)
			if len(r.want.ContainersToKill) == 0 {
				r.want.ContainersToKill = nil
			}
			if !reflect.DeepEqual(got, r.want) {
				t.Errorf("got  %+v\nwant %+v", got, r.want)
			}
		})
	}
}

// A pod in its desired state plans nothing, so a worker can rest.
func TestSteadyStatePlansNoChange(t *testing.T) {
	p := testPod(always(), withSidecar("side"), withInits("i1"))
	st := rt(ready("s1"),
		ctr(p, "a", "c3", "s1", running, 0), ctr(p, "b", "c4", "s1", running, 0),
		ctr(p, "i1", "c2", "s1", exited, 0), ctr(p, "side", "c1", "s1", running, 0))
	if a := ComputePodActions(p, st, nil); a.Changes() {
		t.Errorf("steady pod planned changes: %+v", a)
	}
}

func always() v1.RestartPolicy { return v1.RestartPolicyAlways }
