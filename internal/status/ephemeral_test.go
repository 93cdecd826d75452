package status

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

func withEphemeral(names ...string) podOpt {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, v1.EphemeralContainer{
				EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: n, Image: "img-" + n},
				TargetContainerName:      "a",
			})
		}
	}
}

// status.ephemeralContainerStatuses as upstream reports them: converted
// like the other containers, never started nor ready, and without effect
// on the phase and the conditions.
func TestComputeEphemeral(t *testing.T) {
	always, never := v1.RestartPolicyAlways, v1.RestartPolicyNever
	apps := func(extra ...*container.ContainerStatus) *container.PodStatus {
		return rt(readySB(), append(extra, c("a", "c1", running, 0), c("b", "c2", running, 0))...)
	}
	rows := []struct {
		name      string
		in        Input
		phase     v1.PodPhase
		ephemeral string
		ready     string
	}{
		{
			name:  "just added: waiting to be created",
			in:    Input{Pod: testPod(always, withEphemeral("debug")), Runtime: apps()},
			phase: v1.PodRunning, ephemeral: "debug=waiting:ContainerCreating", ready: "True",
		},
		{
			name:  "just added to a pod with init containers: PodInitializing, as upstream",
			in:    Input{Pod: testPod(always, withInits("i0"), withEphemeral("debug")), Runtime: apps(c("i0", "c0", exited, 0))},
			phase: v1.PodRunning, ephemeral: "debug=waiting:PodInitializing",
		},
		{
			name:  "running: not ready, and the pod stays Ready",
			in:    Input{Pod: testPod(always, withEphemeral("debug")), Runtime: apps(c("debug", "c3", running, 0))},
			phase: v1.PodRunning, ephemeral: "debug=running", ready: "True",
		},
		{
			name: "could not start: why, from the sync",
			in: Input{Pod: testPod(always, withEphemeral("debug")), Runtime: apps(),
				Waiting: map[string]container.Waiting{"debug": {Reason: "ErrImagePull"}}},
			phase: v1.PodRunning, ephemeral: "debug=waiting:ErrImagePull", ready: "True",
		},
		{
			name: "exited under Always: terminated, never waiting to restart",
			in: Input{Pod: testPod(always, withEphemeral("debug")), Runtime: apps(c("debug", "c3", exited, 1)),
				Waiting: map[string]container.Waiting{"debug": {Reason: "CrashLoopBackOff"}}},
			phase: v1.PodRunning, ephemeral: "debug=terminated:1:Error", ready: "True",
		},
		{
			name: "still running while the app containers are done: the pod's phase is theirs",
			in: Input{Pod: testPod(never, withEphemeral("debug")),
				Runtime: rt(readySB(), c("debug", "c3", running, 0), c("a", "c1", exited, 0), c("b", "c2", exited, 0))},
			phase: v1.PodSucceeded, ephemeral: "debug=running",
		},
		{
			name: "two, one running, one not yet",
			in: Input{Pod: testPod(always, withEphemeral("debug", "debug2")),
				Runtime: apps(c("debug", "c3", running, 0))},
			phase: v1.PodRunning, ephemeral: "debug=running; debug2=waiting:ContainerCreating",
		},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			r.in.Now = now
			s := Compute(r.in)
			if s.Phase != r.phase {
				t.Errorf("phase %s, want %s", s.Phase, r.phase)
			}
			if got := summary(s.EphemeralContainerStatuses); got != r.ephemeral {
				t.Errorf("ephemeral containers:\n got  %q\n want %q", got, r.ephemeral)
			}
			if r.ready != "" {
				if got := condStr(s, v1.PodReady); got != r.ready {
					t.Errorf("Ready %q, want %q", got, r.ready)
				}
			}
			for _, cs := range s.EphemeralContainerStatuses {
				if cs.Started != nil || cs.Ready {
					t.Errorf("%s: started %v ready %v; upstream sets neither for ephemeral containers", cs.Name, cs.Started, cs.Ready)
				}
				if cs.State.Running != nil && cs.ContainerID != "containerd://c3" {
					t.Errorf("%s: containerID %q", cs.Name, cs.ContainerID)
				}
			}
		})
	}
}
