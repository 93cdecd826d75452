package status

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/internal/container"
)

var (
	t0  = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now = metav1.NewTime(t0.Add(time.Hour))
)

type podOpt func(*v1.Pod)

func testPod(policy v1.RestartPolicy, opts ...podOpt) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid", Generation: 1},
		Spec: v1.PodSpec{
			RestartPolicy: policy,
			Containers:    []v1.Container{{Name: "a", Image: "img-a"}, {Name: "b", Image: "img-b"}},
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
			p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n, Image: "img-" + n})
		}
	}
}

func withSidecar(name string) podOpt {
	always := v1.ContainerRestartPolicyAlways
	return func(p *v1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: name, Image: "img-" + name, RestartPolicy: &always})
	}
}

func onlyA(p *v1.Pod) { p.Spec.Containers = p.Spec.Containers[:1] }

func deleted(p *v1.Pod) {
	ts := metav1.NewTime(t0)
	p.DeletionTimestamp = &ts
}

func sb(id string, state container.SandboxState, ips ...string) *container.SandboxStatus {
	return &container.SandboxStatus{ID: id, State: state, IPs: ips}
}

func readySB(ips ...string) []*container.SandboxStatus {
	return []*container.SandboxStatus{sb("s1", container.SandboxReady, ips...)}
}

// c is a runtime container in sandbox s1; exit is ignored unless exited.
func c(name, id string, state container.State, exit int32) *container.ContainerStatus {
	cs := &container.ContainerStatus{ID: id, Name: name, SandboxID: "s1", State: state, Image: "img-" + name,
		ImageRef: "sha256:" + name, StartedAt: t0.Add(500 * time.Millisecond)}
	if state == container.StateExited {
		cs.ExitCode = exit
		cs.FinishedAt = t0.Add(time.Minute)
	}
	return cs
}

func restarts(cs *container.ContainerStatus, n int) *container.ContainerStatus {
	cs.RestartCount = n
	return cs
}

func reason(cs *container.ContainerStatus, r string) *container.ContainerStatus {
	cs.Reason = r
	return cs
}

// rt lists sandboxes and containers newest first.
func rt(sandboxes []*container.SandboxStatus, containers ...*container.ContainerStatus) *container.PodStatus {
	for i, s := range sandboxes {
		s.CreatedAt = t0.Add(-time.Duration(i) * time.Minute)
	}
	for i, c := range containers {
		c.CreatedAt = t0.Add(-time.Duration(i) * time.Second)
	}
	return &container.PodStatus{UID: "uid", Sandboxes: sandboxes, Containers: containers}
}

const (
	running = container.StateRunning
	exited  = container.StateExited
	created = container.StateCreated
	unknown = container.StateUnknown
)

// Summaries keep the table readable.

func stateStr(s v1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Waiting != nil:
		return "waiting:" + s.Waiting.Reason
	case s.Terminated != nil:
		return fmt.Sprintf("terminated:%d:%s", s.Terminated.ExitCode, s.Terminated.Reason)
	}
	return "-"
}

func summary(list []v1.ContainerStatus) string {
	var parts []string
	for _, cs := range list {
		p := cs.Name + "=" + stateStr(cs.State)
		if l := stateStr(cs.LastTerminationState); l != "-" {
			p += " last=" + l
		}
		if cs.RestartCount != 0 {
			p += fmt.Sprintf(" restarts=%d", cs.RestartCount)
		}
		if cs.Ready {
			p += " ready"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

func condStr(s v1.PodStatus, t v1.PodConditionType) string {
	for _, c := range s.Conditions {
		if c.Type == t {
			out := string(c.Status)
			if c.Reason != "" {
				out += "/" + c.Reason
			}
			if c.Message != "" {
				out += ": " + c.Message
			}
			return out
		}
	}
	return "missing"
}

func TestCompute(t *testing.T) {
	always, onFailure, never := v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever
	init2 := withInits("i0", "i1")

	type row struct {
		name string
		in   Input
		// Expectations; empty strings are not checked.
		phase      v1.PodPhase
		inits      string
		containers string
		ready      string // Ready condition
		cready     string // ContainersReady condition
		initd      string // Initialized condition
		toStart    string // PodReadyToStartContainers condition
	}
	rows := []row{
		// --- a new pod ---
		{
			name:  "nothing created yet",
			in:    Input{Pod: testPod(always)},
			phase: v1.PodPending, containers: "a=waiting:ContainerCreating; b=waiting:ContainerCreating",
			ready: "False/ContainersNotReady: containers with unready status: [a b]", cready: "False/ContainersNotReady: containers with unready status: [a b]",
			initd: "True", toStart: "False/PodSandboxNotReady: no pod sandbox exists",
		},
		{
			name:  "nothing created yet, with init containers",
			in:    Input{Pod: testPod(always, init2)},
			phase: v1.PodPending, inits: "i0=waiting:PodInitializing; i1=waiting:PodInitializing",
			containers: "a=waiting:PodInitializing; b=waiting:PodInitializing",
			initd:      "False/ContainersNotInitialized: containers with incomplete status: [i0 i1]",
		},
		{
			name:    "sandbox ready, no container yet",
			in:      Input{Pod: testPod(always), Runtime: rt(readySB("10.0.0.5"))},
			phase:   v1.PodPending,
			toStart: "True",
		},
		{
			name:    "sandbox not ready",
			in:      Input{Pod: testPod(always), Runtime: rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady)})},
			toStart: "False/PodSandboxNotReady: pod sandbox is not ready",
		},

		// --- init containers ---
		{
			name:  "init container running",
			in:    Input{Pod: testPod(always, init2), Runtime: rt(readySB(), c("i0", "c1", running, 0))},
			phase: v1.PodPending, inits: "i0=running; i1=waiting:PodInitializing",
			initd: "False/ContainersNotInitialized: containers with incomplete status: [i0 i1]",
		},
		{
			name:  "init containers done, app containers running",
			in:    Input{Pod: testPod(always, init2), Runtime: rt(readySB(), c("a", "c3", running, 0), c("b", "c4", running, 0), c("i1", "c2", exited, 0), c("i0", "c1", exited, 0))},
			phase: v1.PodRunning, inits: "i0=terminated:0:Completed ready; i1=terminated:0:Completed ready",
			containers: "a=running ready; b=running ready",
			initd:      "True", ready: "True", cready: "True",
		},
		{
			name:  "init container failed, Never: the pod failed",
			in:    Input{Pod: testPod(never, init2), Runtime: rt(readySB(), c("i0", "c1", exited, 2))},
			phase: v1.PodFailed, inits: "i0=terminated:2:Error; i1=waiting:PodInitializing",
			ready: "False/PodFailed", cready: "False/PodFailed",
		},
		{
			name:  "init container failed, OnFailure: pending its retry",
			in:    Input{Pod: testPod(onFailure, init2), Runtime: rt(readySB(), c("i0", "c1", exited, 2))},
			phase: v1.PodPending,
		},
		{
			name: "init container in back-off, Never would fail, Always retries",
			in: Input{Pod: testPod(always, init2), Runtime: rt(readySB(), c("i0", "c1", exited, 2)),
				Waiting: map[string]container.Waiting{"i0": {Reason: "CrashLoopBackOff", Message: "back-off 10s"}}},
			phase: v1.PodPending, inits: "i0=waiting:CrashLoopBackOff last=terminated:2:Error; i1=waiting:PodInitializing",
		},
		{
			name:  "init container garbage-collected after app containers ran: Completed",
			in:    Input{Pod: testPod(always, withInits("i0")), Runtime: rt(readySB(), c("a", "c3", running, 0), c("b", "c4", running, 0))},
			phase: v1.PodRunning, inits: "i0=terminated:0:Completed ready", initd: "True",
		},
		{
			name:  "sidecar running and started, app containers running",
			in:    Input{Pod: testPod(always, withSidecar("side")), Runtime: rt(readySB(), c("a", "c3", running, 0), c("b", "c4", running, 0), c("side", "c1", running, 0))},
			phase: v1.PodRunning, inits: "side=running ready", initd: "True", ready: "True",
		},
		{
			name:  "sidecar in back-off after initialization: still Running, not ready",
			in:    Input{Pod: testPod(always, withSidecar("side")), Runtime: rt(readySB(), c("a", "c3", running, 0), c("b", "c4", running, 0), c("side", "c1", exited, 1)), Waiting: map[string]container.Waiting{"side": {Reason: "CrashLoopBackOff"}}},
			phase: v1.PodRunning, inits: "side=waiting:CrashLoopBackOff last=terminated:1:Error",
			cready: "False/ContainersNotReady: containers with unready status: [side]",
		},

		{
			name: "sidecar still starting (startup probe undecided): Pending, not initialized",
			in: Input{Pod: testPod(always, withSidecar("side"), func(p *v1.Pod) { p.Spec.InitContainers[0].StartupProbe = &v1.Probe{} }),
				Runtime: rt(readySB(), c("side", "c1", running, 0)), Probes: fakeProbes{}},
			phase: v1.PodPending, inits: "side=running",
			initd: "False/ContainersNotInitialized: containers with incomplete status: [side]",
		},
		{
			name:  "Never, app containers succeeded, sidecar still running: Running until it is stopped",
			in:    Input{Pod: testPod(never, withSidecar("side")), Runtime: rt(readySB(), c("a", "c3", exited, 0), c("b", "c4", exited, 0), c("side", "c1", running, 0))},
			phase: v1.PodRunning, inits: "side=running ready",
		},
		{
			name: "Never, app containers succeeded, sidecar stopped: Succeeded",
			in: Input{Pod: testPod(never, withSidecar("side")),
				Runtime: rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady)}, c("a", "c3", exited, 0), c("b", "c4", exited, 0), c("side", "c1", exited, 137))},
			phase: v1.PodSucceeded, inits: "side=terminated:137:Error", cready: "False/PodCompleted", initd: "True/PodCompleted",
		},
		{
			name: "Never, an app container failed, sidecar stopped: Failed",
			in: Input{Pod: testPod(never, withSidecar("side")),
				Runtime: rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady)}, c("a", "c3", exited, 0), c("b", "c4", exited, 1), c("side", "c1", exited, 143))},
			phase: v1.PodFailed, cready: "False/PodFailed",
		},
		// --- app containers and the phase ---
		{
			name:  "all running",
			in:    Input{Pod: testPod(always), Runtime: rt(readySB(), c("a", "c1", running, 0), c("b", "c2", running, 0))},
			phase: v1.PodRunning, containers: "a=running ready; b=running ready", ready: "True", cready: "True",
		},
		{
			name:  "one running, one created (start failed)",
			in:    Input{Pod: testPod(always), Runtime: rt(readySB(), c("a", "c1", running, 0), c("b", "c2", created, 0))},
			phase: v1.PodPending, containers: "a=running ready; b=waiting:",
			ready: "False/ContainersNotReady: containers with unready status: [b]",
		},
		{
			name:  "one running, one never created, waiting on its image",
			in:    Input{Pod: testPod(always), Runtime: rt(readySB(), c("a", "c1", running, 0)), Waiting: map[string]container.Waiting{"b": {Reason: "ErrImagePull", Message: "not found"}}},
			phase: v1.PodPending, containers: "a=running ready; b=waiting:ErrImagePull",
		},
		{
			name:  "Always, all exited: restarting, Running",
			in:    Input{Pod: testPod(always), Runtime: rt(readySB(), c("a", "c1", exited, 0), c("b", "c2", exited, 1))},
			phase: v1.PodRunning, containers: "a=terminated:0:Completed; b=terminated:1:Error",
		},
		{
			name:  "OnFailure, all exited 0: Succeeded",
			in:    Input{Pod: testPod(onFailure), Runtime: rt(readySB(), c("a", "c1", exited, 0), c("b", "c2", exited, 0))},
			phase: v1.PodSucceeded, ready: "False/PodCompleted", cready: "False/PodCompleted", initd: "True/PodCompleted",
		},
		{
			name:  "OnFailure, one failed: restarting, Running",
			in:    Input{Pod: testPod(onFailure), Runtime: rt(readySB(), c("a", "c1", exited, 0), c("b", "c2", exited, 1))},
			phase: v1.PodRunning,
		},
		{
			name:  "Never, all exited 0: Succeeded",
			in:    Input{Pod: testPod(never), Runtime: rt(readySB(), c("a", "c1", exited, 0), c("b", "c2", exited, 0))},
			phase: v1.PodSucceeded,
		},
		{
			name:  "Never, one failed: Failed",
			in:    Input{Pod: testPod(never), Runtime: rt(readySB(), c("a", "c1", exited, 0), c("b", "c2", exited, 1))},
			phase: v1.PodFailed, ready: "False/PodFailed", cready: "False/PodFailed",
		},
		{
			name:  "Never, one still running: Running",
			in:    Input{Pod: testPod(never), Runtime: rt(readySB(), c("a", "c1", exited, 0), c("b", "c2", running, 0))},
			phase: v1.PodRunning, ready: "False/ContainersNotReady: containers with unready status: [a]",
		},
		{
			name:  "terminal pod under Always, all exited 0: Succeeded",
			in:    Input{Pod: testPod(always), Terminal: true, Runtime: rt(readySB(), c("a", "c1", exited, 0), c("b", "c2", exited, 0))},
			phase: v1.PodSucceeded,
		},
		{
			name:  "terminal pod under Always, one killed: Failed",
			in:    Input{Pod: testPod(always), Terminal: true, Runtime: rt(readySB(), c("a", "c1", exited, 0), c("b", "c2", exited, 137))},
			phase: v1.PodFailed,
		},
		{
			name:  "terminal phase sticks",
			in:    Input{Pod: testPod(always), Old: v1.PodStatus{Phase: v1.PodSucceeded}, Runtime: rt(readySB(), c("a", "c1", running, 0), c("b", "c2", running, 0))},
			phase: v1.PodSucceeded, ready: "False/PodCompleted",
		},
		{
			name:  "terminal phase on the API object sticks",
			in:    Input{Pod: withStatus(testPod(always), v1.PodStatus{Phase: v1.PodFailed}), Runtime: rt(readySB(), c("a", "c1", running, 0), c("b", "c2", running, 0))},
			phase: v1.PodFailed,
		},

		// --- history, restarts, back-off ---
		{
			name: "crash-looping: waiting with the last termination, restart count from the container",
			in: Input{Pod: testPod(always, onlyA), Runtime: rt(readySB(), restarts(c("a", "c2", exited, 1), 3), restarts(c("a", "c1", exited, 1), 2)),
				Waiting: map[string]container.Waiting{"a": {Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container"}}},
			phase: v1.PodRunning, containers: "a=waiting:CrashLoopBackOff last=terminated:1:Error restarts=3",
		},
		{
			name:       "restarted: running, last termination from the container before",
			in:         Input{Pod: testPod(always, onlyA), Runtime: rt(readySB(), restarts(c("a", "c2", running, 0), 1), reason(c("a", "c1", exited, 137), "OOMKilled"))},
			phase:      v1.PodRunning,
			containers: "a=running last=terminated:137:OOMKilled restarts=1 ready",
		},
		{
			name: "instance before garbage-collected once the newest exited: the reported last termination stays",
			in: Input{Pod: testPod(onFailure, onlyA), Runtime: rt(readySB(), restarts(c("a", "c2", exited, 0), 1)),
				Old: v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{{Name: "a", ContainerID: "containerd://c2", RestartCount: 1,
					LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", ContainerID: "containerd://c1"}}}}}},
			phase: v1.PodSucceeded, containers: "a=terminated:0:Completed last=terminated:1:Error restarts=1",
		},
		{
			name: "another instance's last termination is not carried over",
			in: Input{Pod: testPod(always, onlyA), Runtime: rt(readySB(), c("a", "c3", running, 0)),
				Old: v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{{Name: "a", ContainerID: "containerd://c2",
					LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}}}},
			phase: v1.PodRunning, containers: "a=running ready",
		},
		{
			name: "waiting reason ignored for a container that won't restart",
			in: Input{Pod: testPod(never, onlyA), Runtime: rt(readySB(), c("a", "c1", exited, 1)),
				Waiting: map[string]container.Waiting{"a": {Reason: "CrashLoopBackOff"}}},
			phase: v1.PodFailed, containers: "a=terminated:1:Error",
		},
		{
			name: "running container vanished from the runtime: terminated as ContainerStatusUnknown",
			in: Input{Pod: testPod(always, onlyA), Runtime: rt(readySB()),
				Old: v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{{Name: "a", RestartCount: 2, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}}}},
			phase: v1.PodRunning, containers: "a=waiting:ContainerCreating last=terminated:137:ContainerStatusUnknown restarts=3",
		},
		{
			name: "vanished from a pod being deleted: no restart counted",
			in: Input{Pod: testPod(always, onlyA, deleted), Runtime: rt(readySB()),
				Old: v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{{Name: "a", RestartCount: 2, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}}}},
			containers: "a=waiting:ContainerCreating last=terminated:137:ContainerStatusUnknown restarts=2",
		},
		{
			name: "runtime lost a running container (state unknown)",
			in: Input{Pod: testPod(never, onlyA), Runtime: rt(readySB(), c("a", "c1", unknown, 0)),
				Old: v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{{Name: "a", RestartCount: 1, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}}}},
			phase: v1.PodFailed, containers: "a=terminated:137:ContainerStatusUnknown restarts=2",
		},
		{
			name:       "unknown state without a running past: waiting",
			in:         Input{Pod: testPod(always, onlyA), Runtime: rt(readySB(), c("a", "c1", unknown, 0))},
			phase:      v1.PodPending,
			containers: "a=waiting:",
		},
		{
			name: "terminated container garbage-collected: the old status stays",
			in: Input{Pod: testPod(never, onlyA), Runtime: rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady)}),
				Old: v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{{Name: "a", ContainerID: "containerd://c1", State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}}}},
			phase: v1.PodSucceeded, containers: "a=terminated:0:Completed",
		},
		{
			name:  "exit reasons inferred when the runtime gives none",
			in:    Input{Pod: testPod(never), Runtime: rt(readySB(), reason(c("a", "c1", exited, 0), ""), reason(c("b", "c2", exited, 3), ""))},
			phase: v1.PodFailed, containers: "a=terminated:0:Completed; b=terminated:3:Error",
		},
	}

	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if r.in.Now.IsZero() {
				r.in.Now = now
			}
			s := Compute(r.in)
			check := func(what, got, want string) {
				if want != "" && got != want {
					t.Errorf("%s:\n got  %q\n want %q", what, got, want)
				}
			}
			check("phase", string(s.Phase), string(r.phase))
			check("init containers", summary(s.InitContainerStatuses), r.inits)
			check("containers", summary(s.ContainerStatuses), r.containers)
			check("Ready", condStr(s, v1.PodReady), r.ready)
			check("ContainersReady", condStr(s, v1.ContainersReady), r.cready)
			check("Initialized", condStr(s, v1.PodInitialized), r.initd)
			check("PodReadyToStartContainers", condStr(s, v1.PodReadyToStartContainers), r.toStart)
			check("PodScheduled", condStr(s, v1.PodScheduled), "True")
		})
	}
}

func withStatus(p *v1.Pod, s v1.PodStatus) *v1.Pod {
	p.Status = s
	return p
}

// TestComputeFull checks every field of one status, including IDs, images,
// times (rounded to seconds) and the start time.
func TestComputeFull(t *testing.T) {
	p := testPod(v1.RestartPolicyAlways, onlyA)
	in := Input{
		Pod:     p,
		Runtime: rt(readySB("10.1.0.7"), restarts(c("a", "c2", running, 0), 1), c("a", "c1", exited, 1)),
		NodeIPs: []string{"192.168.1.10"},
		Now:     now,
	}
	got := Compute(in)

	started := metav1.NewTime(t0)
	finished := metav1.NewTime(t0.Add(time.Minute))
	yes := true
	want := v1.PodStatus{
		ObservedGeneration: 1,
		Phase:              v1.PodRunning,
		Conditions: []v1.PodCondition{
			{Type: v1.PodReadyToStartContainers, Status: v1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: now},
			{Type: v1.PodInitialized, Status: v1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: now},
			{Type: v1.PodReady, Status: v1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: now},
			{Type: v1.ContainersReady, Status: v1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: now},
			{Type: v1.PodScheduled, Status: v1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: now},
		},
		HostIP:    "192.168.1.10",
		HostIPs:   []v1.HostIP{{IP: "192.168.1.10"}},
		PodIP:     "10.1.0.7",
		PodIPs:    []v1.PodIP{{IP: "10.1.0.7"}},
		StartTime: &now,
		QOSClass:  v1.PodQOSBestEffort,
		ContainerStatuses: []v1.ContainerStatus{{
			Name:         "a",
			Image:        "img-a",
			ImageID:      "sha256:a",
			ContainerID:  "containerd://c2",
			RestartCount: 1,
			Ready:        true,
			Started:      &yes,
			State:        v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: started}},
			LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", StartedAt: started, FinishedAt: finished, ContainerID: "containerd://c1",
			}},
			Resources: &v1.ResourceRequirements{},
		}},
		// A BestEffort pod (no cgroup values given): no pod-level values.
		Resources:          &v1.ResourceRequirements{Requests: v1.ResourceList{}, Limits: v1.ResourceList{}},
		AllocatedResources: v1.ResourceList{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}

	// Computing again from the result changes nothing (apart from nothing).
	in.Old = got
	in.Now = metav1.NewTime(now.Add(time.Hour))
	if again := Compute(in); !reflect.DeepEqual(again, got) {
		t.Errorf("recomputed status differs:\n%+v\n%+v", again, got)
	}
}

func TestComputeRuntimeName(t *testing.T) {
	in := Input{Pod: testPod(v1.RestartPolicyAlways, onlyA), Runtime: rt(readySB(), c("a", "c1", running, 0)), RuntimeName: "cri-o", Now: now}
	if id := Compute(in).ContainerStatuses[0].ContainerID; id != "cri-o://c1" {
		t.Errorf("container ID %q", id)
	}
}

func TestConditionTransitionTimes(t *testing.T) {
	earlier := metav1.NewTime(t0.Add(-time.Hour))
	p := testPod(v1.RestartPolicyAlways)
	old := v1.PodStatus{Conditions: []v1.PodCondition{
		{Type: v1.PodScheduled, Status: v1.ConditionTrue, LastTransitionTime: earlier},
		{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: earlier},
		{Type: v1.ContainersReady, Status: v1.ConditionFalse, LastTransitionTime: earlier},
	}}
	// a is running, b is not: Ready turns False (transition now),
	// ContainersReady stays False (keeps its time), PodScheduled stays True.
	s := Compute(Input{Pod: p, Old: old, Now: now, Runtime: rt(readySB(), c("a", "c1", running, 0))})
	want := map[v1.PodConditionType]metav1.Time{
		v1.PodScheduled:              earlier,
		v1.ContainersReady:           earlier,
		v1.PodReady:                  now,
		v1.PodInitialized:            now,
		v1.PodReadyToStartContainers: now,
	}
	for _, c := range s.Conditions {
		if !c.LastTransitionTime.Equal(&metav1.Time{Time: want[c.Type].Time}) {
			t.Errorf("%s: lastTransitionTime %v, want %v", c.Type, c.LastTransitionTime, want[c.Type])
		}
	}
}

func TestConditionsOwnedByOthers(t *testing.T) {
	gate := v1.PodConditionType("example.com/lb")
	p := testPod(v1.RestartPolicyAlways, onlyA)
	p.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: gate}}
	runtime := rt(readySB(), c("a", "c1", running, 0))

	s := Compute(Input{Pod: p, Runtime: runtime, Now: now})
	if got, want := condStr(s, v1.PodReady), `False/ReadinessGatesNotReady: corresponding condition of pod readiness gate "example.com/lb" does not exist.`; got != want {
		t.Errorf("Ready %q, want %q", got, want)
	}

	p.Status.Conditions = []v1.PodCondition{
		{Type: gate, Status: v1.ConditionFalse},
		{Type: v1.PodReady, Status: v1.ConditionTrue}, // ours: recomputed, not copied
	}
	s = Compute(Input{Pod: p, Runtime: runtime, Now: now})
	if got, want := condStr(s, v1.PodReady), `False/ReadinessGatesNotReady: the status of pod readiness gate "example.com/lb" is not "True", but False`; got != want {
		t.Errorf("Ready %q, want %q", got, want)
	}
	if s.Conditions[0].Type != gate {
		t.Errorf("gate condition not carried over first: %+v", s.Conditions)
	}
	if n := len(s.Conditions); n != 6 {
		t.Errorf("%d conditions, want 6: %+v", n, s.Conditions)
	}

	p.Status.Conditions[0].Status = v1.ConditionTrue
	if got := condStr(Compute(Input{Pod: p, Runtime: runtime, Now: now}), v1.PodReady); got != "True" {
		t.Errorf("Ready %q with the gate True", got)
	}

	disruption := v1.PodCondition{Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: "TerminationByKubelet"}
	s = Compute(Input{Pod: p, Runtime: runtime, Now: now, Old: v1.PodStatus{Conditions: []v1.PodCondition{disruption}}})
	if got := condStr(s, v1.DisruptionTarget); got != "True/TerminationByKubelet" {
		t.Errorf("DisruptionTarget %q, want it carried over from the old status", got)
	}
}

func TestStartTimeAndPhaseReason(t *testing.T) {
	p := testPod(v1.RestartPolicyAlways)
	s := Compute(Input{Pod: p, Now: now})
	if s.StartTime == nil || !s.StartTime.Equal(&now) {
		t.Errorf("start time %v, want now", s.StartTime)
	}
	earlier := metav1.NewTime(t0)
	old := v1.PodStatus{StartTime: &earlier, Phase: v1.PodFailed, Reason: "Evicted", Message: "low on memory"}
	s = Compute(Input{Pod: p, Now: now, Old: old})
	if !s.StartTime.Equal(&earlier) {
		t.Errorf("start time %v, want the old one", s.StartTime)
	}
	if s.Phase != v1.PodFailed || s.Reason != "Evicted" || s.Message != "low on memory" {
		t.Errorf("phase %s reason %q message %q; want the old ones", s.Phase, s.Reason, s.Message)
	}
}

func TestPodIPs(t *testing.T) {
	type row struct {
		name    string
		pod     *v1.Pod
		runtime *container.PodStatus
		old     v1.PodStatus
		nodeIPs []string
		want    []string
		hostIPs []string
	}
	hostNet := testPod(v1.RestartPolicyAlways, func(p *v1.Pod) { p.Spec.HostNetwork = true })
	rows := []row{
		{name: "no sandbox", pod: testPod(v1.RestartPolicyAlways)},
		{name: "single stack", pod: testPod(v1.RestartPolicyAlways), runtime: rt(readySB("10.0.0.2")), nodeIPs: []string{"192.168.0.1"},
			want: []string{"10.0.0.2"}, hostIPs: []string{"192.168.0.1"}},
		{name: "dual stack, IPv4 node: IPv4 first, one per family", pod: testPod(v1.RestartPolicyAlways),
			runtime: rt(readySB("fd00::2", "10.0.0.2", "10.0.0.3")), nodeIPs: []string{"192.168.0.1", "fd00::1"},
			want: []string{"10.0.0.2", "fd00::2"}, hostIPs: []string{"192.168.0.1", "fd00::1"}},
		{name: "dual stack, IPv6 node: IPv6 first", pod: testPod(v1.RestartPolicyAlways),
			runtime: rt(readySB("10.0.0.2", "fd00:0::2")), nodeIPs: []string{"fd00::1", "192.168.0.1"},
			want: []string{"fd00::2", "10.0.0.2"}, hostIPs: []string{"fd00::1", "192.168.0.1"}},
		{name: "sandbox stopped: the old addresses stay", pod: testPod(v1.RestartPolicyNever),
			runtime: rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady)}),
			old:     v1.PodStatus{PodIP: "10.0.0.9", PodIPs: []v1.PodIP{{IP: "10.0.0.9"}}},
			want:    []string{"10.0.0.9"}},
		{name: "host network: the node's addresses", pod: hostNet, runtime: rt(readySB()),
			nodeIPs: []string{"192.168.0.1", "fd00::1"}, want: []string{"192.168.0.1", "fd00::1"}, hostIPs: []string{"192.168.0.1", "fd00::1"}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			s := Compute(Input{Pod: r.pod, Runtime: r.runtime, Old: r.old, NodeIPs: r.nodeIPs, Now: now})
			var got []string
			for _, ip := range s.PodIPs {
				got = append(got, ip.IP)
			}
			if !reflect.DeepEqual(got, r.want) {
				t.Errorf("podIPs %v, want %v", got, r.want)
			}
			if len(r.want) > 0 && s.PodIP != r.want[0] {
				t.Errorf("podIP %q, want %q", s.PodIP, r.want[0])
			}
			var hosts []string
			for _, ip := range s.HostIPs {
				hosts = append(hosts, ip.IP)
			}
			if !reflect.DeepEqual(hosts, r.hostIPs) {
				t.Errorf("hostIPs %v, want %v", hosts, r.hostIPs)
			}
			if len(r.hostIPs) > 0 && s.HostIP != r.hostIPs[0] {
				t.Errorf("hostIP %q", s.HostIP)
			}
		})
	}
}

func TestQOSClass(t *testing.T) {
	res := func(kv ...string) v1.ResourceList {
		l := v1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[v1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return l
	}
	ctr := func(req, lim v1.ResourceList) v1.Container {
		return v1.Container{Name: "x", Resources: v1.ResourceRequirements{Requests: req, Limits: lim}}
	}
	type row struct {
		name       string
		containers []v1.Container
		inits      []v1.Container
		podLevel   *v1.ResourceRequirements
		status     v1.PodQOSClass
		want       v1.PodQOSClass
	}
	full := res("cpu", "1", "memory", "1Gi")
	rows := []row{
		{name: "nothing set", containers: []v1.Container{ctr(nil, nil)}, want: v1.PodQOSBestEffort},
		{name: "only non-QoS resources", containers: []v1.Container{ctr(res("ephemeral-storage", "1Gi"), nil)}, want: v1.PodQOSBestEffort},
		{name: "requests equal limits", containers: []v1.Container{ctr(full, full)}, want: v1.PodQOSGuaranteed},
		// Upstream's rule on an undefaulted pod (the API and
		// source.SetPodDefaults set requests from limits first).
		{name: "limits only, undefaulted", containers: []v1.Container{ctr(nil, full)}, want: v1.PodQOSBurstable},
		{name: "requests below limits", containers: []v1.Container{ctr(res("cpu", "500m", "memory", "1Gi"), full)}, want: v1.PodQOSBurstable},
		{name: "cpu only", containers: []v1.Container{ctr(res("cpu", "1"), res("cpu", "1"))}, want: v1.PodQOSBurstable},
		{name: "requests only", containers: []v1.Container{ctr(full, nil)}, want: v1.PodQOSBurstable},
		{name: "one guaranteed, one best effort", containers: []v1.Container{ctr(full, full), ctr(nil, nil)}, want: v1.PodQOSBurstable},
		{name: "init container counts", containers: []v1.Container{ctr(full, full)}, inits: []v1.Container{ctr(nil, nil)}, want: v1.PodQOSBurstable},
		{name: "pod-level resources decide", containers: []v1.Container{ctr(nil, nil)},
			podLevel: &v1.ResourceRequirements{Requests: full, Limits: full}, want: v1.PodQOSGuaranteed},
		{name: "set once, kept", containers: []v1.Container{ctr(full, full)}, status: v1.PodQOSBurstable, want: v1.PodQOSBurstable},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			p := &v1.Pod{Spec: v1.PodSpec{Containers: r.containers, InitContainers: r.inits, Resources: r.podLevel}}
			p.Status.QOSClass = r.status
			if got := container.PodQOS(p); got != r.want {
				t.Errorf("got %s, want %s", got, r.want)
			}
		})
	}
}

type fakeProbes struct {
	ready, started map[string]bool
}

func (f fakeProbes) Readiness(id string) (bool, bool) { r, ok := f.ready[id]; return r, ok }
func (f fakeProbes) Startup(id string) (bool, bool)   { s, ok := f.started[id]; return s, ok }

func TestProbeResults(t *testing.T) {
	p := testPod(v1.RestartPolicyAlways)
	p.Spec.Containers[0].ReadinessProbe = &v1.Probe{}
	p.Spec.Containers[1].StartupProbe = &v1.Probe{}
	runtime := rt(readySB(), c("a", "c1", running, 0), c("b", "c2", running, 0))

	type row struct {
		name   string
		probes Probes
		want   string // "a:started/ready b:started/ready"
		ready  string
	}
	rows := []row{
		{name: "no prober: running means started and ready", probes: nil, want: "a:true/true b:true/true", ready: "True"},
		{name: "probes without results: not ready, not started", probes: fakeProbes{}, want: "a:true/false b:false/false",
			ready: "False/ContainersNotReady: containers with unready status: [a b]"},
		{name: "results in", probes: fakeProbes{ready: map[string]bool{"c1": true}, started: map[string]bool{"c2": true}},
			want: "a:true/true b:true/true", ready: "True"},
		{name: "readiness failed", probes: fakeProbes{ready: map[string]bool{"c1": false}, started: map[string]bool{"c2": true}},
			want: "a:true/false b:true/true", ready: "False/ContainersNotReady: containers with unready status: [a]"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			s := Compute(Input{Pod: p, Runtime: runtime, Probes: r.probes, Now: now})
			var parts []string
			for _, cs := range s.ContainerStatuses {
				parts = append(parts, fmt.Sprintf("%s:%v/%v", cs.Name, *cs.Started, cs.Ready))
			}
			if got := strings.Join(parts, " "); got != r.want {
				t.Errorf("got %s, want %s", got, r.want)
			}
			if got := condStr(s, v1.PodReady); got != r.ready {
				t.Errorf("Ready %q, want %q", got, r.ready)
			}
		})
	}
}

func TestTerminationMessageTrimmed(t *testing.T) {
	cs := c("a", "c1", container.StateExited, 1)
	cs.Message = strings.Repeat("x", 20000)
	s := Compute(Input{Pod: testPod(v1.RestartPolicyNever), Runtime: rt(readySB(), cs), Now: now})
	if n := len(s.ContainerStatuses[0].State.Terminated.Message); n != maxTerminationMessageBytes/2 {
		t.Errorf("message length %d, want %d", n, maxTerminationMessageBytes/2)
	}
}

// A container's readiness survives a restart of berth until its probe has
// a result; a new container instance starts not ready.
func TestReadinessKeptUntilProbed(t *testing.T) {
	p := testPod(v1.RestartPolicyAlways, onlyA)
	p.Spec.Containers[0].ReadinessProbe = &v1.Probe{}
	runtime := rt(readySB(), c("a", "c1", running, 0))
	old := func(id string, ready bool) v1.PodStatus {
		return v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{{Name: "a", ContainerID: "containerd://" + id, Ready: ready}}}
	}
	rows := []struct {
		name   string
		old    v1.PodStatus
		probes Probes
		want   bool
	}{
		{"no result, was ready", old("c1", true), fakeProbes{}, true},
		{"no result, was not ready", old("c1", false), fakeProbes{}, false},
		{"no result, an older instance was ready", old("c0", true), fakeProbes{}, false},
		{"probe failed since", old("c1", true), fakeProbes{ready: map[string]bool{"c1": false}}, false},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			s := Compute(Input{Pod: p, Old: r.old, Runtime: runtime, Probes: r.probes, Now: now})
			if got := s.ContainerStatuses[0].Ready; got != r.want {
				t.Errorf("ready %v, want %v", got, r.want)
			}
		})
	}
}

func TestKubeletOwnsCondition(t *testing.T) {
	tests := []struct {
		t    v1.PodConditionType
		want bool
	}{
		{v1.PodScheduled, true},
		{v1.PodReady, true},
		{v1.PodInitialized, true},
		{v1.ContainersReady, true},
		{v1.PodReadyToStartContainers, true},
		{v1.PodResizeInProgress, true},
		{v1.PodResizePending, true},
		{v1.AllContainersRestarting, true},
		// Shared: the kubelet sets it when it evicts, controllers too.
		{v1.DisruptionTarget, false},
		{"example.com/gate", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := KubeletOwnsCondition(tt.t); got != tt.want {
			t.Errorf("KubeletOwnsCondition(%q) = %v, want %v", tt.t, got, tt.want)
		}
	}
}

// An eviction (the active deadline) fails the pod whatever its containers
// say — also when they all exited 0 during the kill — and the conditions
// follow the Failed phase.
func TestComputeEvicted(t *testing.T) {
	ev := &Eviction{Reason: "DeadlineExceeded", Message: "Pod was active on the node longer than the specified deadline"}
	for _, tc := range []struct {
		name     string
		runtime  *container.PodStatus
		terminal bool
	}{
		{"still running", rt(readySB(), c("a", "c1", running, 0)), false},
		{"exited 0 while being killed", rt(readySB(), c("a", "c1", exited, 0)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compute(Input{Pod: testPod(v1.RestartPolicyAlways, onlyA), Runtime: tc.runtime, Terminal: tc.terminal, Evicted: ev, Now: now})
			if got.Phase != v1.PodFailed || got.Reason != ev.Reason || got.Message != ev.Message {
				t.Fatalf("phase %s reason %q message %q, want Failed with the eviction's", got.Phase, got.Reason, got.Message)
			}
			for _, cond := range got.Conditions {
				if cond.Type == v1.PodReady && cond.Status != v1.ConditionFalse {
					t.Errorf("Ready=%s on a Failed pod", cond.Status)
				}
			}
		})
	}
}
