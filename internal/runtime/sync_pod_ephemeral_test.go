package runtime

import (
	"context"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
)

// An ephemeral container starts in the pod's sandbox, in the process
// namespace of its target, with events naming spec.ephemeralContainers.
func TestSyncPodStartsEphemeralContainer(t *testing.T) {
	e := newEnv(t)
	pod := fakePod()
	st := e.running(pod)
	app := st.FindContainer("app")

	pod.Spec.EphemeralContainers = []v1.EphemeralContainer{{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{
			Name: "debugger", Image: "busybox:1.0", ImagePullPolicy: v1.PullIfNotPresent,
			Command: []string{"sh"}, Stdin: true, TTY: true,
		},
		TargetContainerName: "app",
	}, {
		EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "plain", Image: "busybox:1.0", ImagePullPolicy: v1.PullIfNotPresent},
	}}
	e.calls()
	res := e.m.SyncPod(context.Background(), pod, st, plan.PodActions{
		SandboxID: st.LatestSandbox().ID, NextInitContainer: plan.NoInit, EphemeralContainersToStart: []int{0, 1},
	})
	if res.Err != nil || len(res.Waiting) != 0 {
		t.Fatalf("SyncPod = %+v", res)
	}
	if got, want := e.calls(), []string{"CreateContainer", "StartContainer", "CreateContainer", "StartContainer"}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls = %v, want %v", got, want)
	}
	e.events()
	id := identityOf(pod)
	for name, want := range map[string]string{
		"debugger": "spec.ephemeralContainers{debugger}",
		"init":     "spec.initContainers{init}",
		"app":      "spec.containers{app}",
	} {
		if got := id.containerRef(name).FieldPath; got != want {
			t.Errorf("event fieldPath of %s = %q, want %q", name, got, want)
		}
	}

	e.settle()
	after := e.status(pod)
	nodeUserns := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	for name, want := range map[string]*runtimeapi.NamespaceOption{
		"debugger": {Network: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_TARGET, TargetId: app.ID, UsernsOptions: nodeUserns},
		"plain":    {Network: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, UsernsOptions: nodeUserns},
	} {
		cs := after.FindContainer(name)
		if cs == nil || cs.State != container.StateRunning || cs.SandboxID != st.LatestSandbox().ID {
			t.Fatalf("%s = %+v", name, cs)
		}
		cfg := e.rs.config(cs.ID)
		checkProto(t, name+" namespaces", want, cfg.GetLinux().GetSecurityContext().GetNamespaceOptions())
		if name == "debugger" && (!cfg.Stdin || !cfg.Tty) {
			t.Errorf("debugger: stdin %v tty %v, want both", cfg.Stdin, cfg.Tty)
		}
	}
	// The others were not touched.
	if now := after.FindContainer("app"); now.ID != app.ID || now.State != container.StateRunning {
		t.Errorf("app = %+v, want %s still running", now, app.ID)
	}
}

// An ephemeral container whose target does not exist waits with
// CreateContainerConfigError, as upstream reports it.
func TestSyncPodEphemeralTargetMissing(t *testing.T) {
	e := newEnv(t)
	pod := fakePod()
	st := e.running(pod)
	pod.Spec.EphemeralContainers = []v1.EphemeralContainer{{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debugger", Image: "busybox:1.0", ImagePullPolicy: v1.PullIfNotPresent},
		TargetContainerName:      "nope",
	}}
	res := e.m.SyncPod(context.Background(), pod, st, plan.PodActions{
		SandboxID: st.LatestSandbox().ID, NextInitContainer: plan.NoInit, EphemeralContainersToStart: []int{0},
	})
	w, ok := res.Waiting["debugger"]
	if !ok || w.Reason != ReasonCreateContainerConfigError || w.Message != "unable to find target container nope" {
		t.Fatalf("Waiting = %+v, want debugger waiting with CreateContainerConfigError", res.Waiting)
	}
	if got := e.events(); !reflect.DeepEqual(got[len(got)-1:], []string{"Warning Failed Error: unable to find target container nope"}) {
		t.Errorf("events = %q", got)
	}
}

// Ephemeral containers start before the init container of the same step,
// as upstream's SyncPod orders them: a debugger reaches a pod whose init
// container cannot start.
func TestSyncPodStartsEphemeralBeforeInit(t *testing.T) {
	e := newEnv(t)
	pod := fakePod()
	res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit})
	if res.Err != nil {
		t.Fatalf("SyncPod = %+v", res)
	}
	st := e.status(pod)
	pod.Spec.EphemeralContainers = []v1.EphemeralContainer{{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debugger", Image: "busybox:1.0", ImagePullPolicy: v1.PullIfNotPresent},
	}}
	e.calls()
	res = e.m.SyncPod(context.Background(), pod, st, plan.PodActions{
		SandboxID: st.LatestSandbox().ID, NextInitContainer: 0, EphemeralContainersToStart: []int{0},
	})
	if res.Err != nil || len(res.Waiting) != 0 {
		t.Fatalf("SyncPod = %+v", res)
	}
	var created []string
	e.rs.Lock()
	for _, c := range e.rs.Containers {
		created = append(created, c.Metadata.Name)
	}
	e.rs.Unlock()
	e.settle()
	st = e.status(pod)
	dbg, init := st.FindContainer("debugger"), st.FindContainer("init")
	if dbg == nil || init == nil || !dbg.CreatedAt.Before(init.CreatedAt) {
		t.Errorf("debugger %+v, init %+v; want both, the debugger created first (containers %v)", dbg, init, created)
	}
}
