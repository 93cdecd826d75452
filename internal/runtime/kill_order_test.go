package runtime

import (
	"context"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
)

// sidecarPod is fakePod with an init container and two sidecars before the
// app containers app and side.
func sidecarPod() *v1.Pod {
	pod := fakePod()
	always := v1.ContainerRestartPolicyAlways
	pod.Spec.InitContainers = []v1.Container{
		{Name: "init", Image: "busybox:1.0", ImagePullPolicy: v1.PullIfNotPresent},
		{Name: "s1", Image: "busybox:1.0", ImagePullPolicy: v1.PullIfNotPresent, RestartPolicy: &always},
		{Name: "s2", Image: "busybox:1.0", ImagePullPolicy: v1.PullIfNotPresent, RestartPolicy: &always},
	}
	return pod
}

// runningWithSidecars runs the init container to completion, then the
// sidecars and the app containers.
func (e *env) runningWithSidecars(pod *v1.Pod) *container.PodStatus {
	e.t.Helper()
	ctx := context.Background()
	res := e.m.SyncPod(ctx, pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: 0})
	if res.Err != nil || len(res.Waiting) > 0 {
		e.t.Fatalf("start init: %+v", res)
	}
	e.exit(e.newest(pod, "init"), 0)
	for i := 1; i < len(pod.Spec.InitContainers); i++ {
		st := e.status(pod)
		res = e.m.SyncPod(ctx, pod, st, plan.PodActions{SandboxID: st.LatestSandbox().ID, NextInitContainer: i})
		if res.Err != nil || len(res.Waiting) > 0 {
			e.t.Fatalf("start %s: %+v", pod.Spec.InitContainers[i].Name, res)
		}
	}
	st := e.status(pod)
	res = e.m.SyncPod(ctx, pod, st, plan.PodActions{SandboxID: st.LatestSandbox().ID, NextInitContainer: plan.NoInit, ContainersToStart: []int{0, 1}})
	if res.Err != nil || len(res.Waiting) > 0 {
		e.t.Fatalf("start apps: %+v", res)
	}
	e.settle()
	e.calls()
	e.events()
	st = e.status(pod)
	// Every sidecar and app container runs.
	if got, want := len(st.RunningContainers()), len(pod.Spec.InitContainers)-1+len(pod.Spec.Containers); got != want {
		e.t.Fatalf("%d running containers, want %d", got, want)
	}
	return st
}

func TestTerminationOrdering(t *testing.T) {
	pod := sidecarPod()
	o := newTerminationOrdering(pod, []string{"app", "s1", "s2"}) // side is not running
	// Apps and plain init containers wait for nothing.
	for _, name := range []string{"app", "side", "init"} {
		if len(o.prereqs[name]) != 0 {
			t.Errorf("%s waits for %d containers", name, len(o.prereqs[name]))
		}
	}
	// s2 waits for both apps; s1 for both apps and s2.
	if len(o.prereqs["s2"]) != 2 || len(o.prereqs["s1"]) != 3 {
		t.Errorf("prereqs: s2 %d, s1 %d; want 2 and 3", len(o.prereqs["s2"]), len(o.prereqs["s1"]))
	}
	isClosed := func(name string) bool {
		select {
		case <-o.terminated[name]:
			return true
		default:
			return false
		}
	}
	if !isClosed("side") || !isClosed("init") || isClosed("app") || isClosed("s1") || isClosed("s2") {
		t.Error("only containers not running start out terminated")
	}
	o.containerTerminated("side") // already closed: no panic
	o.containerTerminated("app")
	o.containerTerminated("app")
}

func TestKillPodStopsSidecarsLast(t *testing.T) {
	e := newEnv(t)
	pod := sidecarPod()
	st := e.runningWithSidecars(pod)
	if err := e.m.KillPod(context.Background(), pod, st, nil); err != nil {
		t.Fatal(err)
	}
	order := e.rs.stopped
	if len(order) != 4 {
		t.Fatalf("stopped %v", order)
	}
	apps := slices.Clone(order[:2])
	slices.Sort(apps)
	if !slices.Equal(apps, []string{"app", "side"}) || !slices.Equal(order[2:], []string{"s2", "s1"}) {
		t.Errorf("stop order %v, want app and side, then s2, then s1", order)
	}
	for _, c := range st.Containers {
		if c.State == container.StateRunning && e.rs.stopTimeout(c.ID) != 7 {
			t.Errorf("%s stopped with %ds, want 7", c.Name, e.rs.stopTimeout(c.ID))
		}
	}
	if e.status(pod).IsRunning() {
		t.Error("still running")
	}
}

func TestKillPodSidecarGracePeriod(t *testing.T) {
	t.Run("a sidecar gets what the apps left", func(t *testing.T) {
		e := newEnv(t)
		pod := sidecarPod()
		pod.Spec.InitContainers = pod.Spec.InitContainers[:2] // init, s1
		st := e.runningWithSidecars(pod)
		entered, release := make(chan struct{}), make(chan struct{})
		e.rs.beforeStop = func(name string) {
			if name == "app" {
				close(entered)
				<-release
			}
		}
		done := make(chan error)
		go func() { done <- e.m.KillPod(context.Background(), pod, st, nil) }()
		<-entered
		e.clock.Step(5 * time.Second)
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := e.rs.stopTimeout(st.FindContainer("s1").ID); got != 2 {
			t.Errorf("s1 stopped with %ds, want 7-5", got)
		}
		if got := e.rs.stopped[len(e.rs.stopped)-1]; got != "s1" {
			t.Errorf("stopped %v, want s1 last", e.rs.stopped)
		}
	})

	t.Run("a sidecar stops when the grace period ran out", func(t *testing.T) {
		e := newEnv(t)
		pod := sidecarPod()
		pod.Spec.InitContainers = pod.Spec.InitContainers[:2]
		st := e.runningWithSidecars(pod)
		entered, release, sidecarStopped := make(chan struct{}), make(chan struct{}), make(chan struct{})
		e.rs.beforeStop = func(name string) {
			switch name {
			case "app":
				close(entered)
				<-release
			case "s1":
				close(sidecarStopped)
			}
		}
		done := make(chan error)
		go func() { done <- e.m.KillPod(context.Background(), pod, st, nil) }()
		<-entered
		// The sidecar waits on the clock (or finds its time up when it
		// starts to wait): either way it stops while app still hangs.
		e.clock.Step(7 * time.Second)
		<-sidecarStopped
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := e.rs.stopTimeout(st.FindContainer("s1").ID); got != 2 {
			t.Errorf("s1 stopped with %ds, want the minimum 2s", got)
		}
	})
}
